//! Template tables including injection attempts (CRLF in headers, quotes and backslashes in a
//! JSON body, URL delimiters in a URL).

use std::collections::{BTreeMap, HashMap};

use webhook_core::{
    OnMissing, ParamSet, RenderError, Template, TemplateBuilder, TemplateContext, TemplateError,
};

fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn header_injection_is_refused() {
    let t = Template::build(TemplateContext::Header, "Bearer %username%").unwrap();
    for evil in ["a\r\nX-Admin: 1", "a\nb", "a\rb", "a\0b", "a\u{1b}b"] {
        let err = t.render(&values(&[("username", evil)])).unwrap_err();
        assert!(
            matches!(err, RenderError::ForbiddenHeaderByte { ref name, .. } if name == "username"),
            "{evil:?}"
        );
        assert!(
            !err.to_string().contains("X-Admin"),
            "error never echoes the value"
        );
    }
    assert_eq!(
        t.render(&values(&[("username", "ana\tb")])).unwrap(),
        "Bearer ana\tb"
    );
}

#[test]
fn json_body_values_are_escaped() {
    let t = Template::build(
        TemplateContext::JsonBody,
        r#"{"user":"%username%","groups":"%groups%","lang":"%headers.Accept-Language%"}"#,
    )
    .unwrap();
    let table = [
        r#"a"b"#,
        r"back\slash",
        r#"","admin":true,"x":""#,
        "line\nbreak\u{0}",
        "naïve ☃",
    ];
    for evil in table {
        let v = values(&[
            ("username", evil),
            ("groups", "g"),
            ("headers.accept-language", "fr"),
        ]);
        let out = t.render(&v).unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["user"], evil, "{out}");
        assert_eq!(parsed["lang"], "fr");
        assert_eq!(
            parsed.as_object().unwrap().len(),
            3,
            "no injected key: {out}"
        );
    }
}

#[test]
fn url_values_are_percent_encoded() {
    let t = Template::build(
        TemplateContext::Url,
        "https://idp.example/u/%username%?ip=%remote_ip%",
    )
    .unwrap();
    let out = t
        .render(&values(&[
            ("username", "a&b=c/d#e?f g%"),
            ("remote_ip", "2001:db8::1"),
        ]))
        .unwrap();
    assert_eq!(
        out,
        "https://idp.example/u/a%26b%3Dc%2Fd%23e%3Ff%20g%25?ip=2001%3Adb8%3A%3A1"
    );
    assert!(out.parse::<http::Uri>().is_ok());
}

#[test]
fn build_time_errors() {
    let cases: [(TemplateContext, &str); 5] = [
        (TemplateContext::Header, "%user_name%"),
        (TemplateContext::Url, "https://h/?u=%usernme%"),
        (TemplateContext::JsonBody, r#"{"u":%username%}"#),
        (TemplateContext::JsonBody, r#"{"u":"%username%""#),
        (TemplateContext::Header, "%headers.Bad Name%"),
    ];
    let errs: Vec<TemplateError> = cases
        .iter()
        .map(|(ctx, src)| Template::build(*ctx, src).unwrap_err())
        .collect();
    assert!(
        matches!(&errs[0], TemplateError::UnknownParameter { name, position: 0 } if name == "user_name")
    );
    assert!(matches!(&errs[1], TemplateError::UnknownParameter { name, .. } if name == "usernme"));
    assert!(
        matches!(&errs[2], TemplateError::OutsideJsonString { name, position: 5 } if name == "username")
    );
    assert!(matches!(&errs[3], TemplateError::InvalidJson(_)));
    assert!(matches!(&errs[4], TemplateError::InvalidHeaderName { .. }));
}

#[test]
fn all_safous_parameters_and_extensions() {
    let src = "%username% %internal_addr% %user_agent% %remote_ip% %cert_thumbprint% \
               %cert_thumbprint_upper% %cert_thumbprint_256% %cert_thumbprint_256_upper% \
               %cert_name% %cert_alt_name% %device_id% %groups% %group_names% %headers.Authorization%";
    let t = TemplateBuilder::new(TemplateContext::Header)
        .on_missing(OnMissing::Empty)
        .build(src)
        .unwrap();
    assert_eq!(t.placeholders().count(), 14);
    assert_eq!(
        t.render(&HashMap::<String, String>::new()).unwrap().trim(),
        ""
    );
    let strict = Template::build(TemplateContext::Header, "%device_id%").unwrap();
    assert_eq!(
        strict.render(&BTreeMap::new()),
        Err(RenderError::Missing {
            name: "device_id".into()
        })
    );
    assert!(Template::build(TemplateContext::Header, "%tenant%").is_err());
    let ext = TemplateBuilder::new(TemplateContext::Header)
        .params(ParamSet::safous().with("tenant"))
        .build("%tenant%")
        .unwrap();
    let mut m = BTreeMap::new();
    m.insert("tenant".to_owned(), "t1".to_owned());
    assert_eq!(ext.render(&m).unwrap(), "t1");
}

#[test]
fn render_into_reuses_a_buffer() {
    let t = Template::build(TemplateContext::Header, "u=%username%").unwrap();
    let mut buf = String::new();
    for name in ["a", "bb"] {
        buf.clear();
        t.render_into(&values(&[("username", name)]), &mut buf)
            .unwrap();
        assert_eq!(buf, format!("u={name}"));
    }
}
