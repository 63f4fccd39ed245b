#!/usr/bin/env python3
"""A recording fake of docker/finch/podman for tests (no container engine runs in CI).

usage: builder.py NAME ARGS...   (tests put a `docker`, `finch` or `podman` wrapper on PATH)

Every call is appended to $FAKE_BUILDER_STATE/calls.jsonl as {"argv": [NAME, ...], "stdin": bool}.
  login --username AWS --password-stdin REGISTRY   password read from stdin, kept in logins.json
  build --platform P --tag T --file F DIR           checks F, and a login for every ECR base in FROM
  push REF                                          needs the build and a login; PutImage to ECR
                                                    (AWS_ENDPOINT_URL: the sandbox); prints the digest
  run --detach --name N --publish H:8080 [--env K]... [--volume D:/opt/ml/model] IMAGE serve
        starts the program $FAKE_BUILDER_STATE/programs.json maps IMAGE to, on port H, with the
        --env values taken from this process's environment and MODEL_DIR=D
  logs --follow N | inspect --format {{.State.ExitCode}} N | rm --force N | info
Knobs: FAKE_BUILD_FAIL=1 (the build fails), FAKE_PUSH_DENIED=<ecr action> (push is denied),
FAKE_NO_DAEMON=1 (every command fails as without a running daemon; =dial: as `docker login` words it).
"""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ.get("FAKE_BUILDER_STATE", "/tmp/fake-builder"))
ECR_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
                    r"(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?")


def load(name, default):
    path = STATE / name
    return json.loads(path.read_text()) if path.exists() else default


def save(name, data):
    (STATE / name).write_text(json.dumps(data, indent=1))


def opts(args, flags_with_value):
    """Split args into ({flag: [values]}, positionals)."""
    found, rest, i = {}, [], 0
    while i < len(args):
        a = args[i]
        if a in flags_with_value:
            found.setdefault(a, []).append(args[i + 1])
            i += 2
        elif a.startswith("--"):
            found.setdefault(a, []).append(True)
            i += 1
        else:
            rest.append(a)
            i += 1
    return found, rest


def registry_of(ref):
    return ref.split("/", 1)[0]


def cmd_login(args, stdin):
    o, rest = opts(args, {"--username", "-u", "--password", "-p"})
    registry = rest[0]
    password = stdin.strip() if "--password-stdin" in o else (o.get("--password") or o.get("-p") or [""])[0]
    logins = load("logins.json", {})
    logins[registry] = {"username": (o.get("--username") or o.get("-u"))[0], "password": password}
    save("logins.json", logins)
    print("Login Succeeded")
    return 0


def cmd_build(args, _stdin):
    o, rest = opts(args, {"--platform", "--tag", "-t", "--file", "-f"})
    dockerfile = Path((o.get("--file") or o.get("-f") or [str(Path(rest[0]) / "Dockerfile")])[0])
    print("#0 building with \"default\" instance using docker driver")
    if not dockerfile.is_file():
        print(f"ERROR: failed to solve: failed to read dockerfile: open {dockerfile}: no such file or directory")
        return 1
    text = dockerfile.read_text()
    logins = load("logins.json", {})
    for line in text.splitlines():
        if line.upper().startswith("FROM "):
            base = [t for t in line.split()[1:] if not t.startswith("--")][0]
            print(f"#1 [internal] load metadata for {base}")
            if ECR_RE.match(base) and registry_of(base) not in logins:
                print(f"ERROR: failed to solve: {base}: failed to resolve source metadata: "
                      "unexpected status from HEAD request: 401 Unauthorized")
                return 1
    if os.environ.get("FAKE_BUILD_FAIL"):
        print("#5 [2/3] RUN apt-get update -y && apt-get install -y nosuchpackage")
        print("#5 0.912 E: Unable to locate package nosuchpackage")
        print("ERROR: failed to solve: process \"/bin/sh -c apt-get install -y nosuchpackage\" did not complete "
              "successfully: exit code: 100")
        return 1
    tag = (o.get("--tag") or o.get("-t"))[0]
    built = load("images.json", {})
    built[tag] = {"platform": (o.get("--platform") or ["(host)"])[0],
                  "dockerfile_sha256": hashlib.sha256(text.encode()).hexdigest()}
    save("images.json", built)
    print(f"#9 naming to {tag} done")
    return 0


def cmd_push(args, _stdin):
    ref = args[-1]
    built = load("images.json", {})
    if ref not in built:
        print(f"An image does not exist locally with the tag: {ref}")
        return 1
    m = ECR_RE.match(ref)
    if registry_of(ref) not in load("logins.json", {}):
        print("no basic auth credentials")
        return 1
    print(f"The push refers to repository [{ref.rsplit(':', 1)[0]}]")
    denied = os.environ.get("FAKE_PUSH_DENIED")
    if denied:
        print(f"denied: User: arn:aws:iam::{m['account']}:user/dev is not authorized to perform: {denied} "
              f"on resource: arn:aws:ecr:{m['region']}:{m['account']}:repository/{m['repo']} "
              "because no identity-based policy allows the action")
        return 1
    import boto3

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 1469,
                   "digest": "sha256:" + built[ref]["dockerfile_sha256"]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 31_000_000,
                    "digest": "sha256:" + hashlib.sha256(ref.encode()).hexdigest()}],
    }
    ecr = boto3.session.Session(region_name=m["region"]).client("ecr")
    out = ecr.put_image(repositoryName=m["repo"], imageManifest=json.dumps(manifest), imageTag=m["tag"],
                        imageManifestMediaType=manifest["mediaType"])
    digest = out["image"]["imageId"]["imageDigest"]
    print(f"{m['tag']}: digest: {digest} size: 529")
    return 0


def cmd_run(args, _stdin):
    o, rest = opts(args, {"--name", "--publish", "-p", "--env", "-e", "--volume", "-v", "--gpus", "--device"})
    image = rest[0]
    programs = load("programs.json", {})
    if image not in programs:
        print(f"Unable to find image '{image}' locally", file=sys.stderr)
        print("docker: Error response from daemon: pull access denied for it, repository does not exist "
              "or may require 'docker login'.", file=sys.stderr)
        return 125
    name = o["--name"][0]
    host_port = (o.get("--publish") or o.get("-p"))[0].split(":")[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
    for key in o.get("--env", []) + o.get("-e", []):
        if "=" in key:
            k, v = key.split("=", 1)
            env[k] = v
        elif key in os.environ:
            env[key] = os.environ[key]
    env["SAGEMAKER_BIND_TO_PORT"] = host_port
    for vol in o.get("--volume", []) + o.get("-v", []):
        src, dest = vol.split(":")[:2]
        if dest == "/opt/ml/model":
            env["MODEL_DIR"] = src
    box = STATE / "containers" / name
    box.mkdir(parents=True)
    (box / "env.json").write_text(json.dumps(env))
    (box / "argv.json").write_text(json.dumps(programs[image] + rest[1:]))
    sup = subprocess.Popen([sys.executable, __file__, "_supervise", name], start_new_session=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (box / "pgid").write_text(str(sup.pid))
    print(hashlib.sha256(name.encode()).hexdigest())
    return 0


def supervise(name):
    """Run the container's program; write its exit code when it ends."""
    box = STATE / "containers" / name
    with open(box / "log", "ab", buffering=0) as log:
        proc = subprocess.Popen(json.loads((box / "argv.json").read_text()), env=json.loads((box / "env.json").read_text()),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        signal.signal(signal.SIGTERM, lambda *_: proc.terminate())
        code = proc.wait()
    (box / "exit_code").write_text(str(code))
    return 0


def cmd_logs(args, _stdin):
    name = args[-1]
    box = STATE / "containers" / name
    if not box.exists():
        print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
        return 1
    pos = 0
    while True:
        done = (box / "exit_code").exists() or (box / "removed").exists()
        data = (box / "log").read_bytes() if (box / "log").exists() else b""
        if len(data) > pos:
            sys.stdout.write(data[pos:].decode("utf-8", "replace"))
            sys.stdout.flush()
            pos = len(data)
        if done:
            return 0
        time.sleep(0.05)


def cmd_inspect(args, _stdin):
    box = STATE / "containers" / args[-1]
    if not box.exists():
        print(f"Error: No such object: {args[-1]}", file=sys.stderr)
        return 1
    print((box / "exit_code").read_text() if (box / "exit_code").exists() else "0")
    return 0


def cmd_info(_args, _stdin):
    print("Server Version: 27.3.1")
    return 0


def cmd_rm(args, _stdin):
    name = args[-1]
    box = STATE / "containers" / name
    if not box.exists():
        print(f"Error response from daemon: No such container: {name}", file=sys.stderr)
        return 1
    try:
        os.killpg(int((box / "pgid").read_text()), signal.SIGKILL)
    except ProcessLookupError:
        pass
    (box / "removed").write_text("1")
    print(name)
    return 0


COMMANDS = {"login": cmd_login, "build": cmd_build, "push": cmd_push, "run": cmd_run, "logs": cmd_logs,
            "inspect": cmd_inspect, "rm": cmd_rm, "info": cmd_info}


def main(argv):
    if argv[1] == "_supervise":
        return supervise(argv[2])
    name, command, args = argv[1], argv[2], argv[3:]
    STATE.mkdir(parents=True, exist_ok=True)
    stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    with open(STATE / "calls.jsonl", "a") as fh:
        fh.write(json.dumps({"argv": [name, command] + args, "stdin": bool(stdin)}) + "\n")
    if os.environ.get("FAKE_NO_DAEMON") == "dial":  # what `docker login` says with a CLI and no engine
        print('error during connect: Post "http://%2Fvar%2Frun%2Fdocker.sock/v1.47/auth": dial unix '
              "/var/run/docker.sock: connect: no such file or directory", file=sys.stderr)
        return 1
    if os.environ.get("FAKE_NO_DAEMON"):
        print("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
              file=sys.stderr)
        return 1
    return COMMANDS[command](args, stdin)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
