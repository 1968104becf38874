pub mod generic;
pub mod meta;
pub mod options;
pub mod scale;
pub mod strategy;
