//! `memlock-test-pki DIR`: writes the TLS tests' certificates into DIR (for the Python and
//! Node suites, which start their own memcached with them) and prints their paths as JSON.

fn main() -> anyhow::Result<()> {
    let Some(dir) = std::env::args_os().nth(1) else {
        anyhow::bail!("usage: memlock-test-pki DIR");
    };
    let pki = memlock_tests::pki::TestPki::generate(std::path::Path::new(&dir))?;
    let path = |p: &std::path::Path| serde_json::Value::from(p.display().to_string());
    let json = serde_json::json!({
        "ca": path(&pki.ca),
        "other_ca": path(&pki.other_ca),
        "server_cert": path(&pki.server_cert),
        "server_key": path(&pki.server_key),
        "client_cert": path(&pki.client_cert),
        "client_key": path(&pki.client_key),
    });
    println!("{json}");
    Ok(())
}
