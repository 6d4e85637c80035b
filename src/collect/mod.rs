//! Sources that produce samples and push them into the store through an
//! [`crate::storage::Appender`]. Nothing here reads the store back.

pub mod host;
pub mod kubernetes;
pub mod probe;
pub mod scrape;
