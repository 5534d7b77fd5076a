pub mod error;
pub mod family;
pub mod view;
