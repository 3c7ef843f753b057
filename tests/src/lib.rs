//! Cross-crate end-to-end tests of OmniCache live in `tests/tests/`; this library is empty.
