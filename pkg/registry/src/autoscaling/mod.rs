//! The `autoscaling` group: HPAs stored as v2, also served as v1.

pub mod horizontalpodautoscaler;
