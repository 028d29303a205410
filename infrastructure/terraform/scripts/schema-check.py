#!/usr/bin/env python3
"""Static check of the Terraform code without downloading the provider.

`terraform validate` needs `terraform init`, which downloads the DigitalOcean provider from the
Terraform registry. Where that is not possible (offline CI), this script checks what validate
would catch most often, against a committed copy of the provider's schema:

- every resource type exists; every argument and nested block name exists in its schema,
  also inside `dynamic` blocks; required arguments are present;
- `digitalocean_x.name.attribute` references name a declared resource and a real attribute;
- module calls pass only declared variables and every required one; `module.m.output`
  references exist; every `var.x` is declared and every `local.x` defined.

It does not evaluate expressions or check types: run `terraform validate` wherever the registry
is reachable.

  schema-check.py [TERRAFORM_DIR]               # default: infrastructure/terraform
  schema-check.py --update-schema PATH/.jsii    # regenerate the schema file from the jsii
      assembly of @cdktf/provider-digitalocean (npm pack @cdktf/provider-digitalocean@<v>)

Needs python-hcl2 (scripts/lint-infra-requirements.txt).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMA_FILE = HERE / "digitalocean-provider-schema.json"
META_ARGS = {"count", "for_each", "depends_on", "lifecycle", "provider", "connection", "provisioner"}
ATTR_REF = re.compile(r"\b(digitalocean_[a-z_]+)\.([a-z0-9_]+)(?:\[[^\]]*\])?\.([a-z0-9_]+)")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def unquote(s: str) -> str:
    return s.strip('"')


# --- schema file -------------------------------------------------------------------------------

def update_schema(jsii_path: Path) -> int:
    """Extract resource argument/block/attribute names from a cdktf jsii assembly."""
    assembly = json.loads(jsii_path.read_text(encoding="utf-8"))
    types = assembly["types"]
    prefix = "@cdktf/provider-digitalocean."

    def struct(fqn: str, seen: set[str]) -> dict:
        out: dict = {"arguments": {}, "blocks": {}}
        for prop in types[fqn].get("properties", []):
            name = snake(prop["name"])
            ref = re.search(r'"fqn": "(' + re.escape(prefix) + r'[^"]+)"', json.dumps(prop["type"]))
            if ref and ref.group(1) in types and types[ref.group(1)].get("kind") == "interface" and ref.group(1) not in seen:
                out["blocks"][name] = {"required": not prop.get("optional", False), **struct(ref.group(1), seen | {ref.group(1)})}
            else:
                out["arguments"][name] = {"required": not prop.get("optional", False)}
        return out

    resources = {}
    for fqn, t in types.items():
        match = re.fullmatch(re.escape(prefix) + r"([A-Za-z0-9]+)\.([A-Za-z0-9]+)", fqn)
        if not match or t.get("kind") != "class" or match.group(1).startswith("dataDigitalocean"):
            continue
        config = f"{fqn}Config"
        if config not in types or match.group(1) == "provider":
            continue
        rtype = "digitalocean_" + snake(match.group(1))
        body = struct(config, {config})
        body["attributes"] = sorted(
            snake(p["name"]) for p in t.get("properties", [])
            if not p["name"].endswith("Input") and p["name"] not in ("fqn", "node", "terraformResourceType", "tfResourceType")
        )
        resources[rtype] = body
    version = re.search(r"digitalocean/digitalocean/([0-9.]+)/", json.dumps(types)).group(1)
    SCHEMA_FILE.write_text(
        json.dumps({"provider": "digitalocean/digitalocean", "version": version, "resources": resources},
                   indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    print(f"schema-check: wrote {len(resources)} resource types of provider {version} to {SCHEMA_FILE}")
    return 0


# --- checks ------------------------------------------------------------------------------------

class Checker:
    def __init__(self, root: Path, schema: dict) -> None:
        import hcl2  # imported here so --help and --update-schema work without it

        self.hcl2 = hcl2
        self.root = root
        self.resources = schema["resources"]
        self.errors: list[str] = []

    def load(self, path: Path) -> dict:
        with path.open(encoding="utf-8") as f:
            return self.hcl2.load(f)

    def block(self, where: str, body: dict, schema: dict) -> None:
        present = set()
        for key, value in body.items():
            if key.startswith("__") or key in META_ARGS:
                continue
            if key == "dynamic":
                for dyn in value:
                    for name, spec in dyn.items():
                        name = unquote(name)
                        present.add(name)
                        sub = schema["blocks"].get(name)
                        if sub is None:
                            self.errors.append(f"{where}: no block {name!r} for `dynamic`")
                            continue
                        for content in spec.get("content", []):
                            self.block(f"{where}.{name}", content, sub)
                continue
            present.add(key)
            if key in schema["blocks"]:
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, dict):
                        self.block(f"{where}.{key}", item, schema["blocks"][key])
            elif key not in schema["arguments"]:
                known = sorted(schema["arguments"]) + sorted(schema["blocks"])
                self.errors.append(f"{where}: unknown argument {key!r} (known: {', '.join(known)})")
        for name, spec in {**schema["arguments"], **schema["blocks"]}.items():
            if spec.get("required") and name not in present and name != "id":
                self.errors.append(f"{where}: required argument {name!r} is missing")

    def module_interface(self, directory: Path) -> tuple[set[str], set[str], set[str]]:
        variables, required, outputs = set(), set(), set()
        for path in sorted(directory.glob("*.tf")):
            doc = self.load(path)
            for var in doc.get("variable", []):
                for name, spec in var.items():
                    variables.add(unquote(name))
                    if "default" not in spec:
                        required.add(unquote(name))
            for out in doc.get("output", []):
                outputs.update(unquote(n) for n in out)
        return variables, required, outputs

    def directory(self, directory: Path) -> None:
        rel = directory.relative_to(self.root)
        variables, _, _ = self.module_interface(directory)
        text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.glob("*.tf")))
        declared: dict[tuple[str, str], str] = {}
        for path in sorted(directory.glob("*.tf")):
            doc = self.load(path)
            for resource in doc.get("resource", []):
                for rtype, named in resource.items():
                    rtype = unquote(rtype)
                    schema = self.resources.get(rtype)
                    if schema is None:
                        self.errors.append(f"{rel}/{path.name}: unknown resource type {rtype}")
                        continue
                    for rname, body in named.items():
                        declared[(rtype, unquote(rname))] = rtype
                        self.block(f"{rel}/{path.name}: {rtype}.{unquote(rname)}", body, schema)
            for module in doc.get("module", []):
                for mname, body in module.items():
                    mname = unquote(mname)
                    source = (directory / unquote(body["source"])).resolve()
                    mvars, mrequired, mouts = self.module_interface(source)
                    args = {k for k in body if not k.startswith("__") and k not in {"source", "version", "providers"} | META_ARGS}
                    for arg in sorted(args - mvars):
                        self.errors.append(f"{rel}/{path.name}: module {mname} has no variable {arg!r}")
                    for arg in sorted(mrequired - args):
                        self.errors.append(f"{rel}/{path.name}: module {mname} needs {arg!r}")
                    for ref in sorted(set(re.findall(r"\bmodule\." + re.escape(mname) + r"\.([a-z0-9_]+)", text))):
                        if ref not in mouts:
                            self.errors.append(f"{rel}: module.{mname}.{ref} is not an output of {source.name}")
        for rtype, rname, attr in sorted(set(ATTR_REF.findall(text))):
            if (rtype, rname) not in declared:
                self.errors.append(f"{rel}: {rtype}.{rname} is not declared here")
            elif attr not in self.resources[rtype]["attributes"]:
                self.errors.append(f"{rel}: {rtype}.{rname}.{attr}: {rtype} has no attribute {attr!r}")
        for var in sorted(set(re.findall(r"\bvar\.([a-z0-9_]+)", text)) - variables):
            self.errors.append(f"{rel}: var.{var} is not declared")
        for local in sorted(set(re.findall(r"\blocal\.([a-z0-9_]+)", text))):
            if not re.search(r"^\s*" + re.escape(local) + r"\s*=", text, re.M):
                self.errors.append(f"{rel}: local.{local} is not defined")

    def run(self) -> int:
        directories = sorted({p.parent for p in self.root.rglob("*.tf") if ".terraform" not in p.parts})
        for directory in directories:
            self.directory(directory)
        for error in self.errors:
            print(f"schema-check: {error}", file=sys.stderr)
        print(f"schema-check: {len(directories)} directories, {len(self.errors)} problem(s)")
        return 1 if self.errors else 0


def main(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if argv[:1] == ["--update-schema"] and len(argv) == 2:
        return update_schema(Path(argv[1]))
    root = Path(argv[0]) if argv else HERE.parent
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    print(f"schema-check: {schema['provider']} {schema['version']} (static schema; not a substitute for terraform validate)")
    return Checker(root.resolve(), schema).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
