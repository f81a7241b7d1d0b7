//! transports (work in progress)
