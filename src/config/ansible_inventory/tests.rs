use super::*;

const DEV: &str = include_str!("../../../infrastructure/ansible/inventories/dev.yml");
const STAGING: &str = include_str!("../../../infrastructure/ansible/inventories/staging.yml");

fn host(name: &str, address: Option<&str>, user: Option<&str>, port: Option<u16>) -> InventoryHost {
    InventoryHost {
        name: name.to_owned(),
        address: address.map(str::to_owned),
        user: user.map(str::to_owned),
        port,
        identity_file: None,
    }
}

fn names(hosts: &[InventoryHost]) -> Vec<&str> {
    hosts.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn reads_the_real_dev_inventory() {
    let hosts = hosts_from_inventory(DEV, Some("api")).unwrap();
    assert_eq!(
        hosts,
        vec![host(
            "deckhand-dev-api-1",
            Some("203.0.113.20"),
            Some("deploy"),
            None
        )]
    );
    assert_eq!(hosts_from_inventory(DEV, None).unwrap(), hosts);
    assert_eq!(hosts_from_inventory(DEV, Some("dev")).unwrap(), hosts);
}

#[test]
fn reads_the_real_staging_inventory() {
    let hosts = hosts_from_inventory(STAGING, Some("api")).unwrap();
    assert_eq!(
        hosts,
        vec![
            host(
                "deckhand-staging-api-1",
                Some("203.0.113.10"),
                Some("deploy"),
                None
            ),
            host(
                "deckhand-staging-api-2",
                Some("203.0.113.11"),
                Some("deploy"),
                None
            ),
        ]
    );
    let err = hosts_from_inventory(STAGING, Some("web")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "group `web` is not in the inventory; its groups are: all, api, staging, ungrouped"
    );
}

#[test]
fn yaml_variables_follow_ansible_precedence() {
    let text = "
all:
  vars:
    ansible_user: root
    ansible_port: 22
    ansible_ssh_private_key_file: ~/.ssh/all
  children:
    prod:
      vars:
        ansible_user: ops
        ansible_port: 2200
      children:
        api:
          vars:
            ansible_user: deploy
          hosts:
            api-1:
              ansible_host: 10.0.0.1
            api-2:
              ansible_host: 10.0.0.2
              ansible_port: '2222'
              ansible_user: special
        db:
          hosts:
            db-1:
              ansible_host: 10.0.0.9
";
    let hosts = hosts_from_inventory(text, Some("prod")).unwrap();
    assert_eq!(names(&hosts), ["api-1", "api-2", "db-1"]);
    assert_eq!(hosts[0].user.as_deref(), Some("deploy"));
    assert_eq!(hosts[0].port, Some(2200));
    assert_eq!(hosts[0].identity_file.as_deref(), Some("~/.ssh/all"));
    assert_eq!(hosts[1].user.as_deref(), Some("special"));
    assert_eq!(hosts[1].port, Some(2222));
    assert_eq!(hosts[2].user.as_deref(), Some("ops"));
    assert_eq!(hosts[2].address.as_deref(), Some("10.0.0.9"));
    assert_eq!(
        names(&hosts_from_inventory(text, Some("db")).unwrap()),
        ["db-1"]
    );
}

#[test]
fn deckhand_variables_override_ansible_ones() {
    let text = "
all:
  vars:
    ansible_user: ops
    deckhand_user: deploy
  hosts:
    web-1:
      ansible_ssh_host: 192.0.2.7
      ansible_ssh_port: 2201
      deckhand_port: 2202
      ansible_private_key_file: /keys/ops
      deckhand_identity_file: /keys/deploy
";
    let hosts = hosts_from_inventory(text, None).unwrap();
    assert_eq!(
        hosts,
        vec![InventoryHost {
            name: "web-1".to_owned(),
            address: Some("192.0.2.7".to_owned()),
            user: Some("deploy".to_owned()),
            port: Some(2202),
            identity_file: Some("/keys/deploy".to_owned()),
        }]
    );
}

#[test]
fn top_level_groups_hang_under_all_and_patterns_expand() {
    let text = "
web:
  hosts:
    web[01:03].example.com:
    'other.example.com:2222':
  vars:
    ansible_user: www
ungrouped_box:
  hosts:
    db-[a:b]:
";
    let hosts = hosts_from_inventory(text, None).unwrap();
    assert_eq!(
        names(&hosts),
        [
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "other.example.com",
            "db-a",
            "db-b"
        ]
    );
    assert_eq!(hosts[3].port, Some(2222));
    assert_eq!(hosts[3].user.as_deref(), Some("www"));
    assert_eq!(hosts[4].user, None);
    assert_eq!(
        names(&hosts_from_inventory(text, Some("all")).unwrap()).len(),
        6
    );
}

#[test]
fn a_host_in_several_groups_is_listed_once() {
    let text = "
all:
  children:
    a:
      hosts:
        h1:
        h2:
    b:
      hosts:
        h2:
        h3:
";
    assert_eq!(
        names(&hosts_from_inventory(text, None).unwrap()),
        ["h1", "h2", "h3"]
    );
}

#[test]
fn malformed_yaml_names_the_line() {
    let text = "all:\n  hosts:\n    a: [\n  vars: {\n";
    let err = hosts_from_inventory(text, None).unwrap_err();
    match &err {
        InventoryError::Yaml { line, .. } => assert!(line.is_some(), "{err}"),
        other => panic!("expected a YAML error, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("malformed YAML inventory at line "),
        "{err}"
    );
}

#[test]
fn yaml_that_is_not_an_inventory_says_where() {
    let err = hosts_from_inventory("all:\n  hosts:\n    - web-1\n", None).unwrap_err();
    assert_eq!(
        err,
        InventoryError::Structure {
            path: "all.hosts".to_owned(),
            message: "expected a mapping of host names (`host: {vars}` or `host:`), found a list"
                .to_owned(),
        }
    );
    let err =
        hosts_from_inventory("all:\n  children:\n    api:\n      web-1:\n", None).unwrap_err();
    assert!(
        err.to_string().contains("at `all.children.api.web-1`"),
        "{err}"
    );
    let err = hosts_from_inventory("- a\n- b\n", None).unwrap_err();
    assert!(
        err.to_string().contains("expected a mapping of groups"),
        "{err}"
    );
}

#[test]
fn unusable_values_are_errors_with_the_host() {
    let err = hosts_from_inventory("all:\n  hosts:\n    h:\n      ansible_port: 70000\n", None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host `h`: `ansible_port`: `70000` is not a port (1-65535)"
    );
    let err = hosts_from_inventory(
        "all:\n  hosts:\n    h:\n      ansible_host: \"{{ lookup('env', 'IP') }}\"\n",
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("Jinja template"), "{err}");
    let err = hosts_from_inventory("all:\n  hosts:\n    h:\n      ansible_user: [a]\n", None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "host `h`: `ansible_user`: expected a string, found <a list>"
    );
}

#[test]
fn no_hosts_is_an_error() {
    assert_eq!(
        hosts_from_inventory("", None).unwrap_err(),
        InventoryError::NoHosts { group: None }
    );
    assert_eq!(
        hosts_from_inventory("all:\n  children:\n    api:\n", Some("api"))
            .unwrap_err()
            .to_string(),
        "group `api` has no hosts"
    );
}

#[test]
fn children_cycles_are_reported() {
    let text = "
all:
  children:
    a:
      children:
        b:
          children:
            a:
          hosts:
            h:
";
    let err = hosts_from_inventory(text, None).unwrap_err();
    assert!(matches!(err, InventoryError::Cycle { .. }), "{err}");
    assert!(err.to_string().contains("a -> b -> a"), "{err}");
}

const INI: &str = "
# staging, INI flavour
loose.example.com

[api]
api-1 ansible_host=203.0.113.10 ansible_user=deploy
api-2 ansible_host=203.0.113.11 ansible_port=2222 # second host
api-[3:4] ansible_host=203.0.113.12

[db]
db-1:5432

[staging:children]
api
db

[staging:vars]
ansible_user = ops
ansible_ssh_private_key_file = \"/home/me/.ssh/staging key\"

[api:vars]
deckhand_user=deploy
";

#[test]
fn reads_ini_inventories() {
    let hosts = hosts_from_inventory(INI, Some("staging")).unwrap();
    assert_eq!(names(&hosts), ["api-1", "api-2", "api-3", "api-4", "db-1"]);
    assert_eq!(hosts[1].port, Some(2222));
    assert_eq!(hosts[1].user.as_deref(), Some("deploy"));
    assert_eq!(hosts[4].user.as_deref(), Some("ops"));
    assert_eq!(hosts[4].port, Some(5432));
    assert_eq!(
        hosts[4].identity_file.as_deref(),
        Some("/home/me/.ssh/staging key")
    );
    assert_eq!(hosts[2].address.as_deref(), Some("203.0.113.12"));

    let all = hosts_from_inventory(INI, None).unwrap();
    assert_eq!(
        all.first().map(|h| h.name.as_str()),
        Some("loose.example.com")
    );
    assert_eq!(
        names(&hosts_from_inventory(INI, Some("ungrouped")).unwrap()),
        ["loose.example.com"]
    );
}

#[test]
fn ini_errors_name_the_line() {
    let err = hosts_from_inventory("[api]\nh1 ansible_host\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "INI inventory, line 2: `ansible_host` after host `h1` is not key=value"
    );
    let err = hosts_from_inventory("[api]\nh1\n[all:children]\napi\nweb\n", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "INI inventory, line 5: group `web` is listed as a child but never defined (no `[web]` section)"
    );
    let err = hosts_from_inventory("[api]\nh1\n[api:hosts]\n", None).unwrap_err();
    assert!(
        err.to_string().starts_with("INI inventory, line 3:"),
        "{err}"
    );
    let err = hosts_from_inventory("[web:vars]\nx=1\n[api]\nh1\n", None).unwrap_err();
    assert!(err.to_string().contains("never defined"), "{err}");
    let err = hosts_from_inventory("[api]\nh1 ansible_host=\"1.2.3.4\n", None).unwrap_err();
    assert!(err.to_string().contains("unclosed quote"), "{err}");
}

#[test]
fn ini_children_defined_after_use_are_fine() {
    let text = "[prod:children]\napi\n\n[api]\nh1 ansible_host=192.0.2.1\n";
    let hosts = hosts_from_inventory(text, Some("prod")).unwrap();
    assert_eq!(hosts, vec![host("h1", Some("192.0.2.1"), None, None)]);
}

#[test]
fn host_patterns() {
    assert_eq!(split_port("web:22"), ("web", Some("22".to_owned())));
    assert_eq!(split_port("web[1:3]"), ("web[1:3]", None));
    assert_eq!(
        split_port("web[1:3]:2222"),
        ("web[1:3]", Some("2222".to_owned()))
    );
    assert_eq!(split_port("2001:db8::1"), ("2001:db8::1", None));
    assert_eq!(
        split_port("[2001:db8::1]:22"),
        ("2001:db8::1", Some("22".to_owned()))
    );
    assert_eq!(
        expand_ranges("n[08:10].x").unwrap(),
        ["n08.x", "n09.x", "n10.x"]
    );
    assert_eq!(expand_ranges("n[1:7:3]").unwrap(), ["n1", "n4", "n7"]);
    assert_eq!(
        expand_ranges("r[a:b]-[1:2]").unwrap(),
        ["ra-1", "ra-2", "rb-1", "rb-2"]
    );
    assert!(expand_ranges("n[3:1]").is_err());
    assert!(expand_ranges("n[1:2").is_err());
    assert!(expand_ranges("n[a:10]").is_err());
    assert!(expand_ranges("n[1:3:0]").is_err());
    assert!(expand_ranges("n[1:5000]-[1:5000]").is_err());
}

#[test]
fn format_detection() {
    assert!(looks_like_ini("[api]\nh1\n"));
    assert!(looks_like_ini("# c\nh1 ansible_host=1.2.3.4\n"));
    assert!(looks_like_ini("h1\n"));
    assert!(!looks_like_ini("---\nall:\n"));
    assert!(!looks_like_ini("all:\n  hosts:\n"));
    assert!(!looks_like_ini("{all: {hosts: {h: null}}}\n"));
    assert!(!looks_like_ini("- a\n"));
    assert!(!looks_like_ini(""));
}
