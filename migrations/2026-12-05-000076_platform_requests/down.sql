DROP TABLE platform_requests;
