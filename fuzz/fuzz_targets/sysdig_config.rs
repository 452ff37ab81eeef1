//! The Sysdig agent's `WEBHOOK` configuration read from random YAML and JSON (the bare mapping,
//! an integration entry or a `local_forwarding` document), and the sender registry's readers of
//! the same documents. An accepted configuration is valid, turns into an endpoint or a typed
//! error, and survives a JSON round trip unchanged; an accepted registry snapshot writes back
//! text that reads again.
//!
//! Input: the document text (YAML and JSON are both tried).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_core::sysdig_config::SysdigWebhookConfig;
use webhook_sender::registry::RegistrySnapshot;

fn check(cfg: &SysdigWebhookConfig) {
    assert!(cfg.validate().is_ok(), "an accepted configuration is valid");
    let _ = cfg.to_forwarding();
    let json = serde_json::to_string(cfg).expect("serializable");
    let again = SysdigWebhookConfig::from_json_str(&json)
        .unwrap_or_else(|e| panic!("written configuration does not read back: {e}: {json}"));
    assert!(
        &again == cfg,
        "written configuration reads back different: {json}"
    );
}

fn check_snapshot(snap: &RegistrySnapshot) {
    let _ = snap.validate();
    let _ = snap.redacted();
    if let Ok(json) = snap.to_json_string() {
        let again = RegistrySnapshot::from_json_str(&json)
            .unwrap_or_else(|e| panic!("written snapshot does not read back: {e}: {json}"));
        assert_eq!(&again, snap, "written snapshot reads back different");
    }
    if let Ok(yaml) = snap.to_yaml_string() {
        let _ = RegistrySnapshot::from_yaml_str(&yaml);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for cfg in [
        SysdigWebhookConfig::from_yaml_str(text),
        SysdigWebhookConfig::from_json_str(text),
    ]
    .into_iter()
    .flatten()
    {
        check(&cfg);
    }
    for snap in [
        RegistrySnapshot::from_sysdig_yaml_str(text),
        RegistrySnapshot::from_sysdig_json_str(text),
        RegistrySnapshot::from_yaml_str(text),
        RegistrySnapshot::from_json_str(text),
    ]
    .into_iter()
    .flatten()
    {
        check_snapshot(&snap);
    }
});
