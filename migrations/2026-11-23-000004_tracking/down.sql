DROP TABLE visitor_emails;
DROP TABLE touches;
DROP TABLE visitors;
