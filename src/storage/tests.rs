//! Engine-level tests: recovery, retention, limits and the model test.
