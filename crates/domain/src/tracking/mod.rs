//! What happened before a conversion: touches and visitors from the tag, tracking links and
//! their clicks, the country of an address, and the attribution of events to touches.

pub mod attribution;
pub mod geo;
pub mod geoip;
pub mod links;
pub mod touches;
