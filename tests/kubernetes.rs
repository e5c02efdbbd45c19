//! The Kubernetes manifests in `deploy/kubernetes/`: they validate against current Kubernetes
//! schemas (`kubernetes-validate --strict`), their pieces refer to each other correctly
//! (selectors match the pod labels, probes and the PodMonitor name real container ports, the
//! volume names the ConfigMap), the pod is locked down, the grace period covers the preStop
//! pause and the drain, the ConfigMap's `cerberus.toml` passes `cerberus --check-config`, and
//! the HTTPS certificate comes from a Secret mounted where the config reads it, and
//! a config change reaches the pods: `checksum.sh` keeps the pod template's `checksum/config`
//! annotation equal to the config's sha256, so changing the config changes the template and
//! `kubectl apply` rolls the pods.

mod common;
#[path = "tls/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cerberus");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Kubernetes versions to validate against: a current release and the newest schemas the
/// installed kubernetes-validate carries (1.37.0 for kubernetes-validate 1.37).
const KUBERNETES_VERSIONS: [&str; 2] = ["1.35.0", "1.37.0"];

fn dir() -> PathBuf {
    Path::new(ROOT).join("deploy/kubernetes")
}

/// Every manifest file, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("read deploy/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Every object of every manifest, by kind (one object per kind here).
fn objects() -> BTreeMap<String, Value> {
    let mut by_kind = BTreeMap::new();
    for file in manifest_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
            let kind = v["kind"]
                .as_str()
                .expect("every object has a kind")
                .to_owned();
            assert!(
                by_kind.insert(kind.clone(), v).is_none(),
                "two {kind} objects"
            );
        }
    }
    by_kind
}

/// Does every `key: value` of `selector` appear in `labels`? An empty selector selects all,
/// which is never what is meant here, so it does not count as a match.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("matchLabels is a map");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A command running kubernetes-validate: the script on PATH, or the module of `python3` (pip
/// may put the script where PATH does not look). Missing fails under `CI=true` and skips
/// elsewhere.
fn kubernetes_validate() -> Option<fn() -> Command> {
    fn script() -> Command {
        Command::new("kubernetes-validate")
    }
    fn module() -> Command {
        let mut c = Command::new("python3");
        c.args(["-m", "kubernetes_validate"]);
        c
    }
    for tool in [script as fn() -> Command, module] {
        if tool()
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return Some(tool);
        }
    }
    common::skip(
        "kubernetes-validate",
        "pip install kubernetes-validate; .ci/run installs it",
    );
    None
}

#[test]
fn manifests_pass_kubernetes_validate_strict() {
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let files = manifest_files();
    for version in KUBERNETES_VERSIONS {
        let (ok, text) = run(tool()
            .args(["--strict", "--kubernetes-version", version])
            .args(&files));
        assert!(ok, "kubernetes {version}:\n{text}");
        // Only the PodMonitor (a Prometheus Operator CRD) has no built-in schema.
        let unchecked: Vec<&str> = text.lines().filter(|l| !l.starts_with("INFO")).collect();
        assert!(
            unchecked.iter().all(|l| l.contains("kind PodMonitor")),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.contains(" passed ")).count(),
            files.len() - 1
        );
    }
    // The check can fail: a misspelt field in a copy is rejected.
    let bad = std::env::temp_dir().join(format!("cerberus-bad-pdb-{}.yaml", std::process::id()));
    let pdb = std::fs::read_to_string(dir().join("pdb.yaml")).unwrap();
    std::fs::write(&bad, pdb.replace("maxUnavailable", "maxUnavailabel")).unwrap();
    let (ok, text) = run(tool().arg("--strict").arg(&bad));
    let _ = std::fs::remove_file(&bad);
    assert!(!ok && text.contains("maxUnavailabel"), "{text}");
}

#[test]
fn selectors_ports_and_references_agree() {
    let o = objects();
    let deployment = &o["Deployment"];
    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(
        &deployment["spec"]["selector"]["matchLabels"],
        labels
    ));
    assert!(selects(&o["Service"]["spec"]["selector"], labels));
    assert!(selects(
        &o["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        labels
    ));
    assert!(selects(
        &o["PodMonitor"]["spec"]["selector"]["matchLabels"],
        labels
    ));
    for spread in pod["spec"]["topologySpreadConstraints"].as_array().unwrap() {
        assert!(selects(&spread["labelSelector"]["matchLabels"], labels));
    }
    let target = &o["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"];
    assert_eq!(target["kind"], "Deployment");
    assert_eq!(target["name"], deployment["metadata"]["name"]);

    let containers = pod["spec"]["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let port_names: Vec<&str> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let named = |v: &Value| {
        let name = v.as_str().expect("ports are referred to by name");
        assert!(
            port_names.contains(&name),
            "{name} is not in {port_names:?}"
        );
    };
    named(&c["readinessProbe"]["httpGet"]["port"]);
    named(&c["livenessProbe"]["httpGet"]["port"]);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    for endpoint in o["PodMonitor"]["spec"]["podMetricsEndpoints"]
        .as_array()
        .unwrap()
    {
        named(&endpoint["port"]);
    }
    for port in o["Service"]["spec"]["ports"].as_array().unwrap() {
        named(&port["targetPort"]);
    }

    // The config volume is the ConfigMap, mounted where the container's args read it.
    let volume = &pod["spec"]["volumes"][0];
    assert_eq!(
        volume["configMap"]["name"],
        o["ConfigMap"]["metadata"]["name"]
    );
    let mount = &c["volumeMounts"][0];
    assert_eq!(mount["name"], volume["name"]);
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let config_path = format!("{}/cerberus.toml", mount["mountPath"].as_str().unwrap());
    assert_eq!(args, ["--config", config_path.as_str()]);

    // The TLS Secret, mounted where the config's cert and key are, readable by the pod's
    // group only; the Service and the container name the HTTPS port.
    let volume = &pod["spec"]["volumes"][1];
    let mount = &c["volumeMounts"][1];
    assert_eq!(mount["name"], volume["name"]);
    assert_eq!(volume["secret"]["defaultMode"], 0o440);
    assert_eq!(
        pod["spec"]["securityContext"]["fsGroup"],
        pod["spec"]["securityContext"]["runAsGroup"]
    );
    let config: toml::Table = config_text().parse().unwrap();
    let dir = mount["mountPath"].as_str().unwrap();
    assert_eq!(
        config["tls"]["cert"].as_str(),
        Some(&*format!("{dir}/tls.crt"))
    );
    assert_eq!(
        config["tls"]["key"].as_str(),
        Some(&*format!("{dir}/tls.key"))
    );
    let port = |p: &Value| p["name"] == "https" && p["containerPort"] == 8443;
    assert!(c["ports"].as_array().unwrap().iter().any(port));
    let https = config["tls"]["listen"].as_str().unwrap();
    assert!(https.ends_with(":8443"), "{https}");
}

#[test]
fn the_pod_is_locked_down() {
    let o = objects();
    let spec = &o["Deployment"]["spec"]["template"]["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(spec["automountServiceAccountToken"], false);
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(sc["capabilities"].get("add").is_none());
    // The same non-root user the image's USER names.
    let containerfile =
        std::fs::read_to_string(Path::new(ROOT).join("deploy/container/Containerfile")).unwrap();
    let user = spec["securityContext"]["runAsUser"].as_u64().unwrap();
    assert!(
        containerfile.contains(&format!("\nUSER {user}:")),
        "USER {user}"
    );
    for key in ["requests", "limits"] {
        assert!(c["resources"][key]["cpu"].is_string(), "cpu {key}");
    }
}

/// The ConfigMap's cerberus.toml, exactly as the pod reads it.
fn config_text() -> String {
    objects()["ConfigMap"]["data"]["cerberus.toml"]
        .as_str()
        .expect("the ConfigMap holds cerberus.toml")
        .to_owned()
}

#[test]
fn the_configmap_config_passes_check_config_and_fits_the_grace_period() {
    let text = config_text();
    // The Secret's files, as the pod has them, where the config names them.
    let secret = common::TempDir::new();
    let ca = support::Ca::new();
    let leaf = ca.leaf(&["cerberus.example"], support::Key::EcdsaP256, 90);
    secret.write("tls.crt", leaf.cert.as_bytes());
    secret.write("tls.key", leaf.key.as_bytes());
    let checked = text.replace(
        "/etc/cerberus/tls/",
        &format!("{}/", secret.path().display()),
    );
    assert_ne!(checked, text, "the config reads the Secret's files");
    let file = std::env::temp_dir().join(format!("cerberus-k8s-{}.toml", std::process::id()));
    std::fs::write(&file, &checked).unwrap();
    let (ok, out) = run(Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .arg("--check-config"));
    let _ = std::fs::remove_file(&file);
    assert!(ok, "cerberus --check-config:\n{out}");

    let config: toml::Table = text.parse().expect("TOML");
    let drain = humantime_secs(
        config["drain_timeout"]
            .as_str()
            .expect("drain_timeout is set"),
    );
    assert_eq!(config["metrics_listen"].as_str(), Some("0.0.0.0:8010"));
    let o = objects();
    let spec = &o["Deployment"]["spec"]["template"]["spec"];
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    let pre_stop = spec["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    assert!(
        (1..=10).contains(&pre_stop),
        "a short preStop pause, not {pre_stop} s"
    );
    assert!(
        grace > pre_stop + drain,
        "grace {grace} s must exceed preStop {pre_stop} s + drain_timeout {drain} s"
    );
}

/// "10s" -> 10. The manifests only use whole seconds.
fn humantime_secs(text: &str) -> u64 {
    text.strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text:?} is not whole seconds"))
}

fn sha256(text: &str) -> String {
    let file = std::env::temp_dir().join(format!("cerberus-sha-{}.toml", std::process::id()));
    std::fs::write(&file, text).unwrap();
    let (ok, out) = run(Command::new("sha256sum").arg(&file));
    let _ = std::fs::remove_file(&file);
    assert!(ok, "sha256sum: {out}");
    out.split_whitespace().next().unwrap().to_owned()
}

fn annotation(deployment: &Value) -> String {
    deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        .as_str()
        .expect("a checksum/config annotation")
        .to_owned()
}

#[test]
fn a_config_change_changes_the_pod_template() {
    // As committed: the annotation is the config's checksum (a config edit without
    // checksum.sh fails here).
    assert_eq!(
        annotation(&objects()["Deployment"]),
        sha256(&config_text()),
        "run deploy/kubernetes/checksum.sh after changing configmap.yaml"
    );

    // A changed config, in a copy: checksum.sh writes the new sum into the template.
    let copy = std::env::temp_dir().join(format!("cerberus-k8s-copy-{}", std::process::id()));
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["configmap.yaml", "deployment.yaml"] {
        std::fs::copy(dir().join(name), copy.join(name)).unwrap();
    }
    let configmap = std::fs::read_to_string(copy.join("configmap.yaml")).unwrap();
    let changed = configmap.replace("Hello from Cerberus!", "Hello from the new config!");
    assert_ne!(changed, configmap);
    std::fs::write(copy.join("configmap.yaml"), &changed).unwrap();
    let (ok, out) = run(Command::new(dir().join("checksum.sh")).arg(&copy));
    assert!(ok, "checksum.sh: {out}");
    let read = |name: &str| {
        let text = std::fs::read_to_string(copy.join(name)).unwrap();
        Value::deserialize(serde_norway::Deserializer::from_str(&text)).unwrap()
    };
    let new_config = read("configmap.yaml")["data"]["cerberus.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_annotation = annotation(&read("deployment.yaml"));
    let _ = std::fs::remove_dir_all(&copy);
    assert!(new_config.contains("Hello from the new config!"));
    assert_eq!(new_annotation, sha256(&new_config));
    assert_ne!(new_annotation, annotation(&objects()["Deployment"]));
}
