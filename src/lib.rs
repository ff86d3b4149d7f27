//! SegOps analytics SDK.
