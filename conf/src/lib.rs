//! conf (work in progress)
