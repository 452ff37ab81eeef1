//! Integration tests of the security modules: known-answer vectors, sign→verify round trips for
//! every preset, rotation, tolerance edges, binary bodies, auth methods, and property tests.

mod security {
    mod auth;
    mod kat;
    mod props;
    mod roundtrip;
    mod verify_rules;
}
