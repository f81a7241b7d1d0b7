//! proxies (work in progress)
