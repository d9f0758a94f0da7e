//! The sandbox: a stateful WTS Chat simulator served over HTTP.
