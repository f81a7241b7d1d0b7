use super::*;

fn env() -> Env {
    [("FRP_TOKEN", "s3cret"), ("PORT", "7001"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn r(t: &str) -> String {
    render(t, &env()).unwrap_or_else(|e| panic!("render {t:?}: {e}"))
}

fn fails(t: &str) -> TemplateError {
    render(t, &env()).expect_err(t)
}

#[test]
fn envs_and_missing() {
    assert_eq!(r("token = \"{{ .Envs.FRP_TOKEN }}\""), "token = \"s3cret\"");
    assert_eq!(r("{{.Envs.PORT}}"), "7001");
    assert_eq!(r("[{{ .Envs.NOPE }}]"), "[<no value>]");
    assert_eq!(r("{{ index .Envs \"NOPE\" }}|"), "|");
    assert_eq!(r("no actions } { here"), "no actions } { here");
}

#[test]
fn trimming() {
    assert_eq!(r("a  \n {{- .Envs.PORT -}} \n  b"), "a7001b");
    assert_eq!(r("a {{- 3}}"), "a3");
    assert_eq!(r("a {{-3}}"), "a -3");
    assert_eq!(r("x\n{{- /* gone */ -}}\ny"), "xy");
    assert_eq!(r("x{{/* multi\nline */}}y"), "xy");
}

#[test]
fn ranges_and_pairs() {
    let t = "{{- range $i, $v := parseNumberRange \"1000-1002,2000\" }}\n[[proxies]]\nname = \"p{{ $i }}\"\nlocalPort = {{ $v }}\n{{- end }}";
    assert_eq!(
        r(t),
        "\n[[proxies]]\nname = \"p0\"\nlocalPort = 1000\n[[proxies]]\nname = \"p1\"\nlocalPort = 1001\n[[proxies]]\nname = \"p2\"\nlocalPort = 1002\n[[proxies]]\nname = \"p3\"\nlocalPort = 2000"
    );
    let t = "{{ range $_, $v := parseNumberRangePair \"10-11\" \"20-21\" }}{{ $v.First }}:{{ $v.Second }} {{ end }}";
    assert_eq!(r(t), "10:20 11:21 ");
    assert_eq!(
        r("{{ range parseNumberRangePair \"1\" \"2\" }}{{ .First }}-{{ .Second }}{{ end }}"),
        "1-2"
    );
    assert_eq!(
        r("{{ range $v := parseNumberRange \"5-6\" }}{{ $v }}{{ end }}"),
        "56"
    );
    assert_eq!(r("{{ parseNumberRange \"1-3\" }}"), "[1 2 3]");
    assert!(fails("{{ parseNumberRangePair \"1-2\" \"3\" }}")
        .reason
        .contains("not in pairs"));
    assert!(fails("{{ parseNumberRange \"1-x\" }}")
        .reason
        .contains("invalid"));
}

#[test]
fn range_else_break_continue_and_maps() {
    assert_eq!(
        r("{{ range $x := .Envs.NOPE }}a{{ else }}empty{{ end }}"),
        "empty"
    );
    assert_eq!(
        r("{{ range $i := parseNumberRange \"1-9\" }}{{ if eq $i 3 }}{{ continue }}{{ end }}{{ if gt $i 5 }}{{ break }}{{ end }}{{ $i }}{{ end }}"),
        "1245"
    );
    assert_eq!(
        r("{{ range $k, $v := .Envs }}{{ $k }}={{ $v }};{{ end }}"),
        "EMPTY=;FRP_TOKEN=s3cret;PORT=7001;"
    );
    assert_eq!(r("{{ range 3 }}{{ . }}{{ end }}"), "012");
}

#[test]
fn conditionals_and_variables() {
    assert_eq!(
        r("{{ if .Envs.EMPTY }}yes{{ else if .Envs.PORT }}port{{ else }}no{{ end }}"),
        "port"
    );
    assert_eq!(r("{{ if not .Envs.EMPTY }}empty{{ end }}"), "empty");
    assert_eq!(r("{{ with .Envs.PORT }}p={{ . }}{{ end }}"), "p=7001");
    assert_eq!(r("{{ $x := \"a\" }}{{ $x = \"b\" }}{{ $x }}"), "b");
    assert_eq!(r("{{ $.Envs.PORT }}"), "7001");
    assert_eq!(
        r("{{ if and .Envs.PORT (eq .Envs.PORT \"7001\") }}ok{{ end }}"),
        "ok"
    );
    assert_eq!(r("{{ or .Envs.EMPTY \"fallback\" }}"), "fallback");
    assert_eq!(r("{{ .Envs.PORT | printf \"%s!\" }}"), "7001!");
    assert_eq!(r("{{ print 1 2 \"a\" }}"), "1 2a");
    assert_eq!(r("{{ len (parseNumberRange \"1-4\") }}"), "4");
    assert_eq!(
        r("{{ (index (parseNumberRangePair \"7\" \"8\") 0).Second }}"),
        "8"
    );
    assert_eq!(r("{{ `raw {{ }}` }}"), "raw {{ }}");
    assert_eq!(r("{{ 'a' }} {{ 0x10 }}"), "97 16");
}

#[test]
fn errors_have_lines() {
    let e = fails("a\nb\n{{ nosuch 1 }}");
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("function \"nosuch\" not defined"), "{e}");
    let e = fails("\n{{ $y }}");
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("undefined variable"), "{e}");
    assert!(fails("{{ if 1 }}").reason.contains("EOF"));
    assert!(fails("{{ end }}").reason.contains("unexpected"));
    assert!(fails("{{ .Envs.X").reason.contains("unclosed"));
    assert!(fails("{{ .Nope }}")
        .reason
        .contains("can't evaluate field Nope"));
    assert!(fails("{{ break }}").reason.contains("outside"));
    assert!(fails("{{ \"x\" 1 }}").reason.contains("non-function"));
    assert!(fails("{{ define \"x\" }}{{ end }}")
        .reason
        .contains("not supported"));
    let e = fails("x\n\n{{ range $i := parseNumberRange \"1-2\" }}\n{{ .Bad }}{{ end }}");
    assert_eq!(e.line, 4);
}

#[test]
fn legacy_has_no_frp_functions() {
    assert!(render_legacy("{{ parseNumberRange \"1\" }}", &env()).is_err());
    assert_eq!(render_legacy("{{ .Envs.PORT }}", &env()).unwrap(), "7001");
}

#[test]
fn bounded_work() {
    let t = "{{ range parseNumberRange \"1-90000\" }}{{ range parseNumberRange \"1-90000\" }}x{{ end }}{{ end }}";
    assert!(fails(t).reason.contains("limit"));
    let deep = "(".repeat(200) + "1" + &")".repeat(200);
    assert!(render(&format!("{{{{ {deep} }}}}"), &env()).is_err());
    let nested = "{{ if 1 }}".repeat(200) + &"{{ end }}".repeat(200);
    assert!(render(&nested, &env()).is_err());
}

proptest::proptest! {
    #[test]
    fn arbitrary_input_never_panics(s in ".{0,200}") {
        let _ = render(&s, &env());
    }

    #[test]
    fn action_soup_never_panics(parts in proptest::collection::vec(proptest::sample::select(vec![
        "{{", "}}", "{{- ", " -}}", "range", "if", "else", "end", "$x", ":=", "=", ",", "$i",
        ".Envs.PORT", ".", "|", "(", ")", "\"1-3\"", "parseNumberRange", "parseNumberRangePair",
        "eq", "1", "-2", "with", "break", "continue", "/*", "*/", " ", "\n", "`", "'", "printf",
        "\"%d\"", "index", "len", "and", "or", "not", "$", ".First",
    ]), 0..40)) {
        let s: String = parts.concat();
        let _ = render(&s, &env());
    }
}

/// Found by the `conf_template` fuzz target's review: a string doubled in a loop grew
/// without bound (steps alone do not bound memory), and copying a long string is one step.
#[test]
fn string_growth_and_copies_are_bounded() {
    let env = Env::new();
    let doubling = r#"{{ $x := "abcdefgh" }}{{ range 64 }}{{ $x = print $x $x }}{{ end }}"#;
    let e = render(doubling, &env).unwrap_err();
    assert!(e.reason.contains("work limit"), "{e}");
    let copies = r#"{{ $x := "abcdefgh" }}{{ range 20 }}{{ $x = print $x $x }}{{ end }}{{ range 100000 }}{{ if eq $x $x }}{{ end }}{{ end }}"#;
    let start = std::time::Instant::now();
    let e = render(copies, &env).unwrap_err();
    assert!(e.reason.contains("work limit"), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    // Ordinary templates stay far below the limit.
    let ok = r#"{{ range $i := parseNumberRange "1-1000" }}{{ printf "%d-%s;" $i "x" }}{{ end }}"#;
    assert!(render(ok, &env).unwrap().len() > 1000);
}
