//! The confirmation step before anything destructive.

use askama::Template;

use crate::layout::Chrome;

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
    pub action: String,
    pub button: String,
    pub cancel: String,
    pub danger: bool,
}
