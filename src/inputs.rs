//! Streaming CSV inputs.
