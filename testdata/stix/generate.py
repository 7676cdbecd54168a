"""Regenerates testdata/stix/valid and testdata/stix/invalid (deterministic: fixed seed).

Each valid case is one STIX 2.1 object (or bundle); each invalid case is a valid one with one
fault, and its .expect file lists the JSON paths Kizuna must report ("." is the object itself,
"!input" a file that cannot be split into objects). Run from the repository root:

    python3 testdata/stix/generate.py testdata/stix

then `cargo test -p kizuna-stix`, which also runs stix2-validator over the same files.
"""
import json, uuid, random, os, copy, sys
random.seed(7)
def u(): return str(uuid.UUID(int=random.getrandbits(128), version=4))
ROOT = sys.argv[1]
V = os.path.join(ROOT, 'valid'); I = os.path.join(ROOT, 'invalid')
for d in (V, I):
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d): os.remove(os.path.join(d, f))
T1 = "2016-04-06T20:03:48.000Z"; T2 = "2016-05-12T08:17:27.000Z"
IDENT = "identity--" + u()
MD_STMT = "marking-definition--" + u()
TLP_GREEN1 = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
TLP_AMBER2 = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
def sdo(ty, **kw):
    o = {"type": ty, "spec_version": "2.1", "id": f"{ty}--{u()}", "created": T1, "modified": T2}
    o.update(kw); return o
def sco(ty, **kw):
    o = {"type": ty, "spec_version": "2.1", "id": f"{ty}--{u()}"}
    o.update(kw); return o
def rid(ty): return f"{ty}--{u()}"
KC = [{"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "reconnaissance"}]
valid = {}
valid["attack-pattern"] = sdo("attack-pattern", name="Spear Phishing", description="d", aliases=["phish"], kill_chain_phases=KC,
    external_references=[{"source_name": "capec", "external_id": "CAPEC-163"}], created_by_ref=IDENT)
valid["campaign"] = sdo("campaign", name="Green Group Attacks", objective="steal", aliases=["GG"], first_seen=T1, last_seen=T2, confidence=80, lang="en")
valid["course-of-action"] = sdo("course-of-action", name="Add TCP port 80 Filter Rule", description="block", labels=["mitigation"])
valid["grouping"] = sdo("grouping", name="Unknown activity", context="suspicious-activity", object_refs=[rid("indicator"), rid("file"), rid("relationship")])
valid["identity"] = sdo("identity", name="ACME Widget, Inc.", identity_class="organization", sectors=["technology"], roles=["analyst"], contact_information="x@example.com")
valid["incident"] = sdo("incident", name="Breach 2024-01", description="d", kill_chain_phases=KC)
valid["indicator"] = sdo("indicator", name="Poison Ivy Malware", indicator_types=["malicious-activity"],
    pattern="[file:hashes.'SHA-256' = '4bac27393bdd9777ce02453256c5577cd02275510b2227f473d03f533924f877']",
    pattern_type="stix", pattern_version="2.1", valid_from=T1, valid_until=T2, kill_chain_phases=KC,
    object_marking_refs=[TLP_GREEN1])
valid["indicator-yara"] = sdo("indicator", pattern="rule x { condition: true }", pattern_type="yara", valid_from=T1)
valid["infrastructure"] = sdo("infrastructure", name="Poison Ivy C2", infrastructure_types=["command-and-control"], first_seen=T1, last_seen=T2, kill_chain_phases=KC)
valid["intrusion-set"] = sdo("intrusion-set", name="Bobcat Breakin", aliases=["Zookeeper"], goals=["acquisition-theft"], resource_level="government", primary_motivation="organizational-gain", secondary_motivations=["personal-gain"], first_seen=T1)
valid["location"] = sdo("location", name="Sweden", region="northern-europe", country="se", latitude=59.3, longitude=18.0, precision=100.0, city="Stockholm")
valid["location-country"] = sdo("location", country="ch")
valid["malware"] = sdo("malware", name="Cryptolocker", is_family=True, malware_types=["ransomware"], kill_chain_phases=KC,
    operating_system_refs=[rid("software")], sample_refs=[rid("file"), rid("artifact")], architecture_execution_envs=["x86"],
    implementation_languages=["c"], capabilities=["evades-av"], first_seen=T1)
valid["malware-instance"] = sdo("malware", is_family=False, sample_refs=[rid("file")])
valid["malware-analysis"] = sdo("malware-analysis", product="microsoft", version="5.1", result="malicious", analysis_sco_refs=[rid("file")],
    host_vm_ref=rid("software"), operating_system_ref=rid("software"), installed_software_refs=[rid("software")], sample_ref=rid("file"),
    submitted=T1, analysis_started=T1, analysis_ended=T2, modules=["m"])
valid["note"] = sdo("note", abstract="Tracking", content="This note...", authors=["John Doe"], object_refs=[rid("campaign")])
valid["observed-data"] = sdo("observed-data", first_observed=T1, last_observed=T2, number_observed=50, object_refs=[rid("ipv4-addr"), rid("domain-name"), rid("relationship")])
valid["observed-data-objects"] = sdo("observed-data", first_observed=T1, last_observed=T1, number_observed=1,
    objects={"0": {"type": "ipv4-addr", "id": rid("ipv4-addr"), "value": "198.51.100.3"}, "1": {"type": "network-traffic", "id": rid("network-traffic"), "src_ref": "0", "protocols": ["tcp"]}})
valid["observed-data-objects-without-ids"] = sdo("observed-data", first_observed=T1, last_observed=T1, number_observed=1,
    objects={"0": {"type": "ipv4-addr", "value": "198.51.100.3"}, "1": {"type": "network-traffic", "src_ref": "0", "protocols": ["tcp"]}})
valid["opinion"] = sdo("opinion", opinion="strongly-disagree", explanation="wrong", authors=["Ibn"], object_refs=[rid("relationship")])
valid["report"] = sdo("report", name="The Black Vine Cyberespionage Group", report_types=["campaign"], published=T2, object_refs=[rid("indicator"), rid("campaign")])
valid["threat-actor"] = sdo("threat-actor", name="Evil Org", threat_actor_types=["crime-syndicate"], aliases=["Evil"], roles=["director"],
    goals=["money"], sophistication="advanced", resource_level="organization", primary_motivation="personal-gain", personal_motivations=["revenge"], first_seen=T1, last_seen=T2)
valid["tool"] = sdo("tool", name="VNC", tool_types=["remote-access"], tool_version="1.0", aliases=["vnc"], kill_chain_phases=KC)
valid["vulnerability"] = sdo("vulnerability", name="CVE-2016-1234", external_references=[{"source_name": "cve", "external_id": "CVE-2016-1234"}])
valid["relationship"] = sdo("relationship", relationship_type="indicates", source_ref=rid("indicator"), target_ref=rid("malware"), start_time=T1, stop_time=T2, description="d")
valid["relationship-sco"] = sdo("relationship", relationship_type="resolves-to", source_ref=rid("domain-name"), target_ref=rid("ipv4-addr"))
valid["sighting"] = sdo("sighting", sighting_of_ref=rid("indicator"), first_seen=T1, last_seen=T2, count=3,
    observed_data_refs=[rid("observed-data")], where_sighted_refs=[rid("identity"), rid("location")], summary=False)
# SCOs
valid["artifact"] = sco("artifact", mime_type="application/zip", payload_bin="VBORw0KGgoAAAANSUhEUgAAADI==", encryption_algorithm="mime-type-indicated", decryption_key="My voice is my passport")
valid["artifact-url"] = sco("artifact", url="https://example.com/x.exe", hashes={"SHA-256": "a"*64})
valid["autonomous-system"] = sco("autonomous-system", number=15139, name="Slime Industries", rir="ARIN")
valid["directory"] = sco("directory", path="C:\\Windows\\System32", ctime=T1, contains_refs=[rid("file"), rid("directory")])
valid["domain-name"] = sco("domain-name", value="example.com", resolves_to_refs=[rid("ipv4-addr")])
valid["email-addr"] = sco("email-addr", value="john@example.com", display_name="John Doe", belongs_to_ref=rid("user-account"))
valid["email-message"] = sco("email-message", is_multipart=False, date=T1, content_type="text/plain", from_ref=rid("email-addr"), to_refs=[rid("email-addr")],
    subject="Check out this picture of a cat!", additional_header_fields={"Content-Language": ["en", "de"], "X-Mailer": ["Mutt/1.5.23", "Mutt/1.5.24"]}, body="Hi", received_lines=["from mail.example.com"])
valid["email-message-multipart"] = sco("email-message", is_multipart=True, subject="s",
    body_multipart=[{"content_type": "text/plain; charset=utf-8", "body": "Cats are funny!"},
                    {"content_type": "image/png", "content_disposition": "attachment; filename=\"tabby.png\"", "body_raw_ref": rid("artifact")}],
    raw_email_ref=rid("artifact"))
valid["file"] = sco("file", name="foo.dll", size=25536, hashes={"MD5": "a"*32, "SHA-1": "b"*40, "x_custom": "zz"}, mime_type="application/x-dosexec",
    parent_directory_ref=rid("directory"), content_ref=rid("artifact"), magic_number_hex="4d5a", ctime=T1)
valid["file-extensions"] = sco("file", hashes={"SHA-256": "c"*64}, extensions={
    "ntfs-ext": {"alternate_data_streams": [{"name": "second.stream", "size": 25536}]},
    "windows-pebinary-ext": {"pe_type": "exe", "machine_hex": "014c", "number_of_sections": 4, "time_date_stamp": "2016-01-22T12:31:12Z",
        "optional_header": {"magic_hex": "010b", "size_of_code": 4096}, "sections": [{"name": ".text", "size": 4096, "entropy": 6.5}]},
    "archive-ext": {"contains_refs": [rid("file"), rid("file")], "comment": "zip"},
    "pdf-ext": {"version": "1.7", "document_info_dict": {"Title": "Sample"}},
    "raster-image-ext": {"image_height": 768, "image_width": 1024, "exif_tags": {"Make": "Nikon"}}})
valid["ipv4-addr"] = sco("ipv4-addr", value="198.51.100.0/24", resolves_to_refs=[rid("mac-addr")], belongs_to_refs=[rid("autonomous-system")])
valid["ipv6-addr"] = sco("ipv6-addr", value="2001:0db8::/96")
valid["mac-addr"] = sco("mac-addr", value="d2:fb:49:24:37:18")
valid["mutex"] = sco("mutex", name="__CLEANSWEEP__")
valid["network-traffic"] = sco("network-traffic", src_ref=rid("ipv4-addr"), dst_ref=rid("domain-name"), protocols=["ipv4", "tcp", "http"], src_port=3372, dst_port=80,
    start=T1, end=T2, is_active=False, src_byte_count=147, src_packets=3, ipfix={"minimumIpTotalLength": 32}, encapsulates_refs=[rid("network-traffic")],
    extensions={"http-request-ext": {"request_method": "get", "request_value": "/download.html", "request_version": "http/1.1",
        "request_header": {"Host": ["www.example.com"]}}, "tcp-ext": {"src_flags_hex": "00000002"},
        "socket-ext": {"address_family": "AF_INET", "socket_type": "SOCK_STREAM", "is_listening": True}, "icmp-ext": {"icmp_type_hex": "08", "icmp_code_hex": "00"}})
valid["process"] = sco("process", pid=1221, created_time=T1, cwd="C:\\Users", command_line="./gedit-bin --new-window", environment_variables={"ENVTEST": "/path/to/bin"},
    image_ref=rid("file"), parent_ref=rid("process"), child_refs=[rid("process")], opened_connection_refs=[rid("network-traffic")], creator_user_ref=rid("user-account"),
    extensions={"windows-process-ext": {"aslr_enabled": True, "dep_enabled": True, "priority": "HIGH_PRIORITY_CLASS", "owner_sid": "S-1-5-21"},
        "windows-service-ext": {"service_name": "sirvizio", "display_name": "Sirvizio", "start_type": "SERVICE_AUTO_START", "service_type": "SERVICE_WIN32_OWN_PROCESS", "service_status": "SERVICE_RUNNING", "service_dll_refs": [rid("file")]}})
valid["software"] = sco("software", name="Word", cpe="cpe:2.3:a:microsoft:word:2000:*:*:*:*:*:*:*", version="2002", vendor="Microsoft", languages=["en"])
valid["url"] = sco("url", value="https://example.com/research/index.html", defanged=False)
valid["user-account"] = sco("user-account", user_id="1001", account_login="jdoe", account_type="unix", display_name="John Doe", is_service_account=False,
    is_privileged=False, can_escalate_privs=True, account_created=T1, account_first_login=T2, extensions={"unix-account-ext": {"gid": 1001, "groups": ["wheel"], "home_dir": "/home/jdoe", "shell": "/bin/bash"}})
valid["windows-registry-key"] = sco("windows-registry-key", key="HKEY_LOCAL_MACHINE\\System\\Foo\\Bar", values=[{"name": "Foo", "data": "qwerty", "data_type": "REG_SZ"}],
    modified_time=T1, creator_user_ref=rid("user-account"), number_of_subkeys=2)
valid["x509-certificate"] = sco("x509-certificate", issuer="C=ZA, ST=Western Cape, L=Cape Town, O=Thawte", validity_not_before=T1, validity_not_after=T2,
    subject="C=US, ST=Maryland", serial_number="36:f7:d4:32:f4:ab:70:ea:d3:ce:98:6e:ea:99:93:49:32:0a:b7:06", subject_public_key_exponent=65537,
    x509_v3_extensions={"basic_constraints": "critical,CA:TRUE", "private_key_usage_period_not_before": T1}, hashes={"SHA-256": "d"*64})
# meta
LC_TARGET = rid("campaign")
valid["language-content"] = sdo("language-content", object_ref=LC_TARGET, object_modified=T2,
    contents={"de": {"name": "Bank Angriff 1", "description": "Weitere Informationen"}, "fr": {"name": "Attaque Bank 1"}})
md_stmt = {"type": "marking-definition", "spec_version": "2.1", "id": MD_STMT, "created": T1, "created_by_ref": IDENT,
    "definition_type": "statement", "definition": {"statement": "Copyright 2019, Example Corp"}, "name": "copyright"}
valid["marking-definition-statement"] = md_stmt
TLP1 = [("white", "613f2e26-407d-48c7-9eca-b8e91df99dc9"), ("green", "34098fce-860f-48ae-8e50-ebd3cc5e41da"),
        ("amber", "f88d31f6-486f-44da-b317-01333bde0b82"), ("red", "5e57c739-391a-4eb3-b6be-7d15ca92d5ed")]
for colour, x in TLP1:
    valid[f"marking-definition-tlp1-{colour}"] = {"type": "marking-definition", "spec_version": "2.1", "id": f"marking-definition--{x}",
        "created": "2017-01-20T00:00:00.000Z", "definition_type": "tlp", "name": f"TLP:{colour.upper()}", "definition": {"tlp": colour}}
TLP2 = [("clear", "94868c89-83c2-464b-929b-a1a8aa3c8487"), ("green", "bab4a63c-aed9-4cf5-a766-dfca5abac2bb"),
        ("amber", "55d920b0-5e8b-4f79-9ee9-91f868d9b421"), ("amber+strict", "939a9414-2ddd-4d32-a0cd-375ea402b003"),
        ("red", "e828b379-4e03-4974-9ac4-e53a884c97c1")]
EXT_TLP = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
for level, x in TLP2:
    valid[f"marking-definition-tlp2-{level.replace('+', '-')}"] = {"type": "marking-definition", "spec_version": "2.1", "id": f"marking-definition--{x}",
        "created": "2022-10-01T00:00:00.000Z", "name": f"TLP:{level.upper()}",
        "extensions": {EXT_TLP: {"extension_type": "property-extension", "tlp_2_0": level}}}
EXT_NEW = "extension-definition--" + u()
valid["extension-definition"] = sdo("extension-definition", created_by_ref=IDENT, name="New SDO 1", description="d",
    schema="https://www.example.com/schema-newobj-1/v1/", version="1.2.1", extension_types=["new-sdo"])
valid["extension-definition-toplevel"] = sdo("extension-definition", created_by_ref=IDENT, name="Top", schema="https://example.com/s", version="1",
    extension_types=["toplevel-property-extension"], extension_properties=["toxicity", "rank"])
valid["custom-x-object"] = sdo("x-acme-widget", x_acme_color="red", name="widget", x_acme_parts=[1, 2])
valid["custom-new-sdo"] = sdo("my-favorite-sdo", name="This is the name of my favorite", some_property_name1="value1",
    extensions={EXT_NEW: {"extension_type": "new-sdo"}})
valid["custom-new-sco"] = sco("my-sco", some_value="v", extensions={"extension-definition--" + u(): {"extension_type": "new-sco"}})
valid["custom-x-sco"] = sco("x-acme-thing", x_value="v")
valid["custom-properties"] = sdo("indicator", pattern="[ipv4-addr:value = '198.51.100.1']", pattern_type="stix", valid_from=T1,
    x_acme_score=7, x_acme_nested={"Deep": [1, {"a": None}]}, x_acme_blob_bin="aGVsbG8=", x_acme_thing_hex="0aff", toxicity=8, rank=5,
    extensions={"extension-definition--" + u(): {"extension_type": "property-extension", "rank": 5, "x_other": "y"},
                "extension-definition--" + u(): {"extension_type": "toplevel-property-extension"}})
valid["granular-markings"] = sdo("campaign", name="G", description="secret", aliases=["a", "b"], object_marking_refs=[TLP_AMBER2],
    granular_markings=[{"marking_ref": MD_STMT, "selectors": ["description", "aliases.[1]"]}, {"marking_ref": TLP_GREEN1, "selectors": ["name"]}])
valid["external-references"] = sdo("attack-pattern", name="X", external_references=[
    {"source_name": "veris", "external_id": "0001AA7F-C601-424A-B2B8-BE6C9F5164E7", "url": "https://github.com/vz-risk/VCDB/blob/master/data.json",
     "hashes": {"SHA-256": "6db12788c37247f2316052e142f42f4b259d6561751e5f401a1ae2a6df9c674b"}},
    {"source_name": "ACME Threat Intel", "description": "Threat report"}, {"source_name": "cve", "external_id": "CVE-2021-44228"}])
valid["granular-lang"] = sdo("campaign", name="Bank Attack", lang="en", description="d",
    granular_markings=[{"lang": "de", "selectors": ["description"]}])
valid["extension-custom-key"] = sdo("campaign", name="c", extensions={"my-extension": {"a_b": 1}})
valid["email-message-header-single"] = sco("email-message", is_multipart=False, subject="s", additional_header_fields={"X-Mailer": ["Mutt/1.5.23"]})
valid["revoked"] = sdo("tool", name="t", revoked=True, confidence=0)
bundle_objs = [valid["identity"], valid["indicator"], valid["malware"], valid["relationship"], valid["url"], md_stmt]
valid["bundle"] = {"type": "bundle", "id": rid("bundle"), "objects": bundle_objs}

invalid = {}  # name -> (obj, [paths])
def bad(name_, base_, paths, drop=(), **set_):
    o = copy.deepcopy(valid[base_])
    for d in drop:
        o.pop(d, None)
    for k, v in set_.items():
        o[k] = v
    invalid[name_] = (o, paths)
# common
bad("missing-id", "campaign", ["id"], drop=["id"])
bad("bad-id-uuid", "campaign", ["id"], id="campaign--not-a-uuid")
bad("id-type-mismatch", "campaign", ["id"], id="tool--" + u())
bad("bad-type-name", "custom-x-object", ["type", "id"], type="X_Widget")
bad("missing-spec-version", "campaign", ["spec_version"], drop=["spec_version"])
bad("wrong-spec-version", "campaign", ["spec_version"], spec_version="2.0")
bad("missing-created", "campaign", ["created"], drop=["created"])
bad("missing-modified", "campaign", ["modified"], drop=["modified"])
bad("modified-before-created", "campaign", ["modified"], modified="2015-01-01T00:00:00.000Z")
bad("created-not-utc", "campaign", ["created"], created="2016-04-06T20:03:48.000+01:00")
bad("created-no-millis", "campaign", ["created"], created="2016-04-06T20:03:48Z")
bad("created-by-ref-wrong-type", "campaign", ["created_by_ref"], created_by_ref=rid("tool"))
bad("created-by-ref-not-id", "campaign", ["created_by_ref"], created_by_ref="ACME")
bad("confidence-range", "campaign", ["confidence"], confidence=101)
bad("confidence-type", "campaign", ["confidence"], confidence="high")
bad("labels-empty", "campaign", ["labels"], labels=[])
bad("labels-not-strings", "campaign", ["labels[1]"], labels=["a", 3])
bad("revoked-type", "campaign", ["revoked"], revoked="yes")
bad("external-ref-no-source", "attack-pattern", ["external_references[0].source_name"], external_references=[{"url": "https://example.com"}])
bad("external-ref-only-source", "attack-pattern", ["external_references[1]"], external_references=[{"source_name": "a", "description": "b"}, {"source_name": "lonely"}])
bad("external-ref-cve-format", "vulnerability", ["external_references[0].external_id"], external_references=[{"source_name": "cve", "external_id": "2016-1234"}])
bad("external-ref-bad-hash", "attack-pattern", ["external_references[0].hashes.SHA-256"], external_references=[{"source_name": "a", "url": "https://example.com", "hashes": {"SHA-256": "abc"}}])
bad("object-marking-not-marking", "campaign", ["object_marking_refs[0]"], object_marking_refs=[rid("identity")])
bad("object-marking-empty", "campaign", ["object_marking_refs"], object_marking_refs=[])
bad("granular-no-selectors", "granular-markings", ["granular_markings[0].selectors"], granular_markings=[{"marking_ref": MD_STMT}])
bad("granular-empty-selectors", "granular-markings", ["granular_markings[0].selectors"], granular_markings=[{"marking_ref": MD_STMT, "selectors": []}])
bad("granular-selector-unresolved", "granular-markings", ["granular_markings[0].selectors[0]"], granular_markings=[{"marking_ref": MD_STMT, "selectors": ["nonexistent"]}])
bad("granular-selector-index", "granular-markings", ["granular_markings[0].selectors[0]"], granular_markings=[{"marking_ref": MD_STMT, "selectors": ["aliases.[5]"]}])
bad("granular-marking-ref-type", "granular-markings", ["granular_markings[0].marking_ref"], granular_markings=[{"marking_ref": rid("identity"), "selectors": ["name"]}])
bad("granular-no-marking-or-lang", "granular-markings", ["granular_markings[0]"], granular_markings=[{"selectors": ["name"]}])
bad("reserved-property", "campaign", ["severity"], severity="high")
bad("property-name-syntax", "campaign", ["x-acme-color"], **{"x-acme-color": "red"})
bad("property-name-short", "campaign", ["xy"], xy="red")
bad("null-property", "campaign", ["description"], description=None)
bad("ref-suffix-not-id", "custom-x-object", ["x_acme_owner_ref"], x_acme_owner_ref="bob")
bad("refs-suffix-not-ids", "custom-x-object", ["x_acme_owner_refs[1]"], x_acme_owner_refs=[IDENT, "bob"])
bad("bin-suffix-not-base64", "custom-x-object", ["x_acme_blob_bin"], x_acme_blob_bin="not base64!")
bad("hex-suffix-not-hex", "custom-x-object", ["x_acme_code_hex"], x_acme_code_hex="xyz")
bad("extensions-empty", "custom-new-sdo", ["extensions"], extensions={})
bad("extension-bad-type", "custom-properties", ["extensions." + list(valid["custom-properties"]["extensions"])[0] + ".extension_type"],
    extensions={list(valid["custom-properties"]["extensions"])[0]: {"extension_type": "property-extensions", "rank": 5}})
bad("extension-missing-type", "custom-properties", ["extensions." + list(valid["custom-properties"]["extensions"])[0] + ".extension_type"],
    extensions={list(valid["custom-properties"]["extensions"])[0]: {"rank": 5}})
bad("extension-bad-key", "campaign", ["extensions.my extension!"], extensions={"my extension!": {"a_b": 1}})
bad("extension-bad-definition-id", "campaign", ["extensions.extension-definition--1234"], extensions={"extension-definition--1234": {"extension_type": "property-extension", "a_b": 1}})
bad("hex-uppercase", "file", ["magic_number_hex"], magic_number_hex="4D5A")
bad("enc-without-original", "file", ["name_enc"], name_enc="utf-8", drop=["name"])
bad("defanged-on-sdo", "campaign", ["defanged"], defanged=True)
bad("property-name-leading-digit", "campaign", ["1st_seen"], **{"1st_seen": "x"})
bad("email-message-header-string", "email-message", ["additional_header_fields.X-Mailer"], additional_header_fields={"X-Mailer": "Mutt"})
bad("process-env-not-string", "process", ["environment_variables.ENVTEST"], environment_variables={"ENVTEST": 3})
bad("uuid-not-rfc4122", "campaign", ["id"], id="campaign--8e2e2d2b-17d4-0cbf-038f-98ee46b3cd3f")
bad("reserved-type-action", "custom-x-object", ["type", "id"], type="action")
# SDO specifics
bad("attack-pattern-no-name", "attack-pattern", ["name"], drop=["name"])
bad("attack-pattern-kill-chain", "attack-pattern", ["kill_chain_phases[0].phase_name"], kill_chain_phases=[{"kill_chain_name": "x"}])
bad("campaign-last-before-first", "campaign", ["last_seen"], first_seen=T2, last_seen=T1)
bad("campaign-aliases-type", "campaign", ["aliases"], aliases="GG")
bad("course-of-action-no-name", "course-of-action", ["name"], drop=["name"])
bad("grouping-no-context", "grouping", ["context"], drop=["context"])
bad("grouping-no-object-refs", "grouping", ["object_refs"], drop=["object_refs"])
bad("identity-no-name", "identity", ["name"], drop=["name"])
bad("incident-no-name", "incident", ["name"], drop=["name"])
bad("indicator-no-pattern", "indicator", ["pattern"], drop=["pattern"])
bad("indicator-no-pattern-type", "indicator", ["pattern_type"], drop=["pattern_type"])
bad("indicator-no-valid-from", "indicator", ["valid_from", "valid_until"][:1], drop=["valid_from"])
bad("indicator-valid-until-equal", "indicator", ["valid_until"], valid_until=T1)
bad("indicator-types-type", "indicator", ["indicator_types"], indicator_types="malicious-activity")
bad("infrastructure-no-name", "infrastructure", ["name"], drop=["name"])
bad("intrusion-set-no-name", "intrusion-set", ["name"], drop=["name"])
bad("location-nothing", "location", [""], drop=["region", "country", "latitude", "longitude", "precision"])
bad("location-latitude-range", "location", ["latitude"], latitude=91.0)
bad("location-lat-without-long", "location-country", ["longitude"], latitude=10.0)
bad("location-precision-alone", "location-country", ["precision"], precision=5.0)
bad("malware-no-is-family", "malware", ["is_family"], drop=["is_family"])
bad("malware-family-no-name", "malware", ["name"], drop=["name"])
bad("malware-os-refs-type", "malware", ["operating_system_refs[0]"], operating_system_refs=[rid("file")])
bad("malware-analysis-no-product", "malware-analysis", ["product"], drop=["product"])
bad("malware-analysis-no-result", "malware-analysis", [""], drop=["result", "analysis_sco_refs"])
bad("malware-analysis-sample-type", "malware-analysis", ["sample_ref"], sample_ref=rid("url"))
bad("note-no-content", "note", ["content"], drop=["content"])
bad("observed-data-both", "observed-data", [""], objects={"0": {"type": "ipv4-addr", "value": "198.51.100.3"}})
bad("observed-data-neither", "observed-data", [""], drop=["object_refs"])
bad("observed-data-number-zero", "observed-data", ["number_observed"], number_observed=0)
bad("observed-data-number-huge", "observed-data", ["number_observed"], number_observed=1000000000)
bad("observed-data-last-before-first", "observed-data", ["last_observed"], first_observed=T2, last_observed=T1)
bad("observed-data-no-first", "observed-data", ["first_observed"], drop=["first_observed"])
bad("observed-data-refs-sdo", "observed-data", ["object_refs[0]"], object_refs=[rid("indicator")])
bad("observed-data-embedded-bad-ref", "observed-data-objects", ["objects.1.src_ref"],
    objects={"0": {"type": "ipv4-addr", "value": "198.51.100.3"}, "1": {"type": "network-traffic", "src_ref": "7", "protocols": ["tcp"]}})
bad("observed-data-embedded-ref-type", "observed-data-objects", ["objects.1.src_ref"],
    objects={"0": {"type": "mutex", "name": "m"}, "1": {"type": "network-traffic", "src_ref": "0", "protocols": ["tcp"]}})
bad("opinion-bad-value", "opinion", ["opinion"], opinion="meh")
bad("opinion-no-object-refs", "opinion", ["object_refs"], drop=["object_refs"])
bad("report-no-published", "report", ["published"], drop=["published"])
bad("report-empty-object-refs", "report", ["object_refs"], object_refs=[])
bad("threat-actor-no-name", "threat-actor", ["name"], drop=["name"])
bad("tool-no-name", "tool", ["name"], drop=["name"])
bad("vulnerability-no-name", "vulnerability", ["name"], drop=["name"])
bad("relationship-no-type", "relationship", ["relationship_type"], drop=["relationship_type"])
bad("relationship-type-syntax", "relationship", ["relationship_type"], relationship_type="Indicates This")
bad("relationship-source-sro", "relationship", ["source_ref"], source_ref=rid("sighting"))
bad("relationship-target-marking", "relationship", ["target_ref"], target_ref=MD_STMT)
bad("relationship-no-target", "relationship", ["target_ref"], drop=["target_ref"])
bad("relationship-stop-equals-start", "relationship", ["stop_time"], stop_time=T1)
bad("sighting-no-sighting-of", "sighting", ["sighting_of_ref"], drop=["sighting_of_ref"])
bad("sighting-of-relationship", "sighting", ["sighting_of_ref"], sighting_of_ref=rid("relationship"))
bad("sighting-observed-data-type", "sighting", ["observed_data_refs[0]"], observed_data_refs=[rid("indicator")])
bad("sighting-where-type", "sighting", ["where_sighted_refs[1]"], where_sighted_refs=[rid("identity"), rid("malware")])
bad("sighting-count-negative", "sighting", ["count"], count=-1)
bad("sighting-last-before-first", "sighting", ["last_seen"], first_seen=T2, last_seen=T1)
# SCO specifics
bad("artifact-payload-and-url", "artifact", ["url"], url="https://example.com/x")
bad("artifact-url-no-hashes", "artifact-url", ["hashes"], drop=["hashes"])
bad("artifact-bad-encryption", "artifact", ["encryption_algorithm"], encryption_algorithm="rot13")
bad("artifact-key-without-alg", "artifact", ["decryption_key"], drop=["encryption_algorithm"])
bad("artifact-bad-base64", "artifact", ["payload_bin"], payload_bin="%%%")
bad("autonomous-system-no-number", "autonomous-system", ["number"], drop=["number"])
bad("autonomous-system-number-type", "autonomous-system", ["number"], number="AS15139")
bad("directory-no-path", "directory", ["path"], drop=["path"])
bad("directory-contains-wrong", "directory", ["contains_refs[0]"], contains_refs=[rid("url")])
bad("domain-name-no-value", "domain-name", ["value"], drop=["value"])
bad("domain-name-resolves-wrong", "domain-name", ["resolves_to_refs[0]"], resolves_to_refs=[rid("url")])
bad("email-addr-no-value", "email-addr", ["value"], drop=["value"])
bad("email-addr-bad-value", "email-addr", ["value"], value="not an address")
bad("email-message-no-multipart", "email-message", ["is_multipart"], drop=["is_multipart"])
bad("email-message-body-with-multipart", "email-message-multipart", ["body"], body="x")
bad("email-message-from-wrong", "email-message", ["from_ref"], from_ref=rid("user-account"))
bad("email-message-part-empty", "email-message-multipart", ["body_multipart[0]"], body_multipart=[{"content_type": "text/plain"}])
bad("file-no-name-no-hashes", "file", [""], drop=["name", "hashes"])
bad("file-size-negative", "file", ["size"], size=-1)
bad("file-bad-md5", "file", ["hashes.MD5"], hashes={"MD5": "1234"})
bad("file-hashes-empty", "file", ["hashes"], hashes={})
bad("file-parent-wrong", "file", ["parent_directory_ref"], parent_directory_ref=rid("file"))
bad("file-archive-no-contains", "file-extensions", ["extensions.archive-ext.contains_refs"],
    extensions={"archive-ext": {"comment": "zip"}})
bad("file-ntfs-empty-stream", "file-extensions", ["extensions.ntfs-ext.alternate_data_streams[0].name"],
    extensions={"ntfs-ext": {"alternate_data_streams": [{"size": 1}]}})
bad("file-pe-no-type", "file-extensions", ["extensions.windows-pebinary-ext.pe_type"],
    extensions={"windows-pebinary-ext": {"number_of_sections": 4}})
bad("ipv4-addr-bad-value", "ipv4-addr", ["value"], value="256.1.1.1")
bad("ipv4-addr-resolves-wrong", "ipv4-addr", ["resolves_to_refs[0]"], resolves_to_refs=[rid("domain-name")])
bad("ipv6-addr-bad-value", "ipv6-addr", ["value"], value="2001:::1")
bad("mac-addr-upper", "mac-addr", ["value"], value="D2:FB:49:24:37:18")
bad("mutex-no-name", "mutex", ["name"], drop=["name"])
bad("network-traffic-no-endpoints", "network-traffic", [""], drop=["src_ref", "dst_ref"])
bad("network-traffic-no-protocols", "network-traffic", ["protocols"], drop=["protocols"])
bad("network-traffic-port-range", "network-traffic", ["dst_port"], dst_port=70000)
bad("network-traffic-active-with-end", "network-traffic", ["end"], is_active=True)
bad("network-traffic-end-before-start", "network-traffic", ["end"], start=T2, end=T1)
bad("network-traffic-src-wrong", "network-traffic", ["src_ref"], src_ref=rid("url"))
bad("network-traffic-http-no-method", "network-traffic", ["extensions.http-request-ext.request_method"],
    extensions={"http-request-ext": {"request_value": "/"}})
bad("network-traffic-socket-family", "network-traffic", ["extensions.socket-ext.address_family"],
    extensions={"socket-ext": {"address_family": "AF_NOPE"}})
bad("process-empty", "process", [""], drop=["pid", "created_time", "cwd", "command_line", "environment_variables", "image_ref", "parent_ref",
    "child_refs", "opened_connection_refs", "creator_user_ref", "extensions"])
bad("process-image-wrong", "process", ["image_ref"], image_ref=rid("software"))
bad("process-pid-type", "process", ["pid"], pid="1221")
bad("process-uuid-v5", "process", ["id"], id="process--" + str(uuid.uuid5(uuid.NAMESPACE_URL, "x")))
bad("software-no-name", "software", ["name"], drop=["name"])
bad("url-no-value", "url", ["value"], drop=["value"])
bad("user-account-bool-type", "user-account", ["is_privileged"], is_privileged="no")
bad("windows-registry-key-abbrev", "windows-registry-key", ["key"], key="HKLM\\System\\Foo")
bad("windows-registry-key-data-type", "windows-registry-key", ["values[0].data_type"], values=[{"name": "Foo", "data_type": "REG_FOO"}])
bad("x509-empty", "x509-certificate", [""], drop=["issuer", "validity_not_before", "validity_not_after", "subject", "serial_number",
    "subject_public_key_exponent", "x509_v3_extensions", "hashes"])
bad("x509-exponent-type", "x509-certificate", ["subject_public_key_exponent"], subject_public_key_exponent="65537")
bad("sco-defanged-type", "url", ["defanged"], defanged="no")
# meta
bad("language-content-no-object-ref", "language-content", ["object_ref"], drop=["object_ref"])
bad("language-content-no-contents", "language-content", ["contents"], drop=["contents"])
bad("language-content-bad-lang", "language-content", ["contents.not a tag"], contents={"not a tag": {"name": "x"}})
bad("marking-definition-no-definition", "marking-definition-statement", ["definition"], drop=["definition"])
bad("marking-definition-statement-missing", "marking-definition-statement", ["definition.statement"], definition={"text": "x"})
bad("marking-definition-self-ref", "marking-definition-statement", ["object_marking_refs[0]"], object_marking_refs=[MD_STMT])
bad("marking-definition-no-created", "marking-definition-statement", ["created"], drop=["created"])
bad("marking-definition-tlp1-wrong-colour", "marking-definition-tlp1-green", ["definition.tlp", "name"], definition={"tlp": "red"}, name="TLP:RED")
bad("marking-definition-tlp-unknown-id", "marking-definition-statement", ["id"], definition_type="tlp", definition={"tlp": "green"})
bad("marking-definition-tlp2-bad-level", "marking-definition-tlp2-red", ["extensions." + EXT_TLP + ".tlp_2_0"],
    extensions={EXT_TLP: {"extension_type": "property-extension", "tlp_2_0": "purple"}})
bad("extension-definition-no-schema", "extension-definition", ["schema"], drop=["schema"])
bad("extension-definition-bad-type", "extension-definition", ["extension_types[0]"], extension_types=["new-thing"])
bad("extension-definition-props-without-toplevel", "extension-definition", ["extension_properties"], extension_properties=["rank"])
bad("extension-definition-no-version", "extension-definition", ["version"], drop=["version"])
bad("custom-new-sdo-no-created", "custom-new-sdo", ["created"], drop=["created"])
bad("network-traffic-http-header-string", "network-traffic", ["extensions.http-request-ext.request_header.Host"],
    extensions={"http-request-ext": {"request_method": "get", "request_value": "/", "request_header": {"Host": "www.example.com"}}})
bad("sighting-of-sco", "sighting", ["sighting_of_ref"], sighting_of_ref=rid("file"))
bad("extension-definition-no-created-by", "extension-definition", ["created_by_ref"], drop=["created_by_ref"])
bad("granular-marking-ref-and-lang", "granular-markings", ["granular_markings[0]"], granular_markings=[{"marking_ref": MD_STMT, "lang": "en", "selectors": ["name"]}])
bad("lang-not-a-tag", "campaign", ["lang"], lang="english please")
bad("artifact-neither-payload-nor-url", "artifact", ["."], drop=["payload_bin"])
bad("grouping-no-name", "grouping", ["name"], drop=["name"])
bad("observed-data-refs-only-sros", "observed-data", ["object_refs"], object_refs=[rid("relationship")])
bad("software-language-tag", "software", ["languages[0]"], languages=["english please"])
bad("process-service-ext-empty", "process", ["extensions.windows-service-ext"], extensions={"windows-service-ext": {"x_note": "n"}})
# whole-file structure
ob = copy.deepcopy(valid["bundle"]); ob["objects"][1] = copy.deepcopy(invalid["indicator-no-pattern"][0])
invalid["bundle-one-invalid"] = (ob, ["pattern"])

def dump(path, o):
    with open(path, "w") as f:
        json.dump(o, f, indent=2); f.write("\n")
for n, o in valid.items(): dump(os.path.join(V, n + ".json"), o)
for n, (o, paths) in invalid.items():
    dump(os.path.join(I, n + ".json"), o)
    with open(os.path.join(I, n + ".expect"), "w") as f:
        f.write("\n".join(p if p else "." for p in paths) + "\n")
RAW = {
    "malformed-json": ('{"type": "campaign", "id": "campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",\n  "name": "unterminated\n}\n', "!input"),
    "bundle-bad-id": (json.dumps({"type": "bundle", "id": "bundle-1", "objects": [valid["campaign"]]}, indent=2) + "\n", "!input"),
}
for n, (text, exp) in RAW.items():
    open(os.path.join(I, n + ".json"), "w").write(text)
    open(os.path.join(I, n + ".expect"), "w").write(exp + "\n")
print(len(valid), len(invalid) + len(RAW))
