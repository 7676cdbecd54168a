//! The STIX cyber-observable objects (§6) and their predefined extensions.

use serde_json::{Map, Value};

use super::ctx::{Ctx, Refs, at};
use super::forms::{
    is_email, is_hostname, is_integer, is_ipv4_cidr, is_ipv6_cidr, is_language_tag, is_mac,
    is_media_type, is_string, is_string_list, is_string_or_integer, is_uri, uuid_version,
};

const ADDR_TYPES: &[&str] = &["ipv4-addr", "ipv6-addr", "mac-addr", "domain-name"];

/// Type-specific rules of one SCO whose type is defined by STIX 2.1; `b` is the path of the
/// object (empty at top level, `objects.<key>` inside observed-data).
pub(crate) fn check(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str, ty: &str) {
    match ty {
        "artifact" => artifact(ctx, o, b),
        "autonomous-system" => {
            if ctx.required(o, b, "number").is_some() {
                ctx.integer(o, b, "number", None, None);
            }
            ctx.strings(o, b, &["name", "rir"]);
        }
        "directory" => {
            ctx.req_string(o, b, "path");
            ctx.string(o, b, "path_enc");
            ctx.timestamps(o, b, &["ctime", "mtime", "atime"]);
            ctx.references(o, b, "contains_refs", Refs::Types(&["file", "directory"]));
        }
        "domain-name" => {
            if let Some(v) = ctx.req_string(o, b, "value")
                && !is_hostname(v)
            {
                ctx.report(at(b, "value"), "must be a domain name");
            }
            ctx.references(
                o,
                b,
                "resolves_to_refs",
                Refs::Types(&["ipv4-addr", "ipv6-addr", "domain-name"]),
            );
        }
        "email-addr" => {
            if let Some(v) = ctx.req_string(o, b, "value")
                && !is_email(v)
            {
                ctx.report(
                    at(b, "value"),
                    "must be an email address (local-part@domain)",
                );
            }
            ctx.string(o, b, "display_name");
            ctx.reference(o, b, "belongs_to_ref", Refs::Types(&["user-account"]));
        }
        "email-message" => email_message(ctx, o, b),
        "file" => file(ctx, o, b),
        "ipv4-addr" | "ipv6-addr" => {
            if let Some(v) = ctx.req_string(o, b, "value") {
                let ok = if ty == "ipv4-addr" {
                    is_ipv4_cidr(v)
                } else {
                    is_ipv6_cidr(v)
                };
                if !ok {
                    ctx.report(
                        at(b, "value"),
                        format!("must be an {} address or CIDR block", &ty[..4]),
                    );
                }
            }
            ctx.references(o, b, "resolves_to_refs", Refs::Types(&["mac-addr"]));
            ctx.references(o, b, "belongs_to_refs", Refs::Types(&["autonomous-system"]));
        }
        "mac-addr" => {
            if let Some(v) = ctx.req_string(o, b, "value")
                && !is_mac(v)
            {
                ctx.report(
                    at(b, "value"),
                    "must be a MAC address of six lower-case colon-separated octets",
                );
            }
        }
        "mutex" => {
            ctx.req_string(o, b, "name");
        }
        "network-traffic" => network_traffic(ctx, o, b),
        "process" => process(ctx, o, b),
        "software" => {
            ctx.req_string(o, b, "name");
            ctx.strings(o, b, &["cpe", "swid", "vendor", "version"]);
            if let Some(langs) = ctx.string_list(o, b, "languages") {
                for (i, lang) in langs.iter().enumerate() {
                    if !is_language_tag(lang) {
                        ctx.report(
                            format!("{}[{i}]", at(b, "languages")),
                            format!("{lang:?} is not an RFC 5646 language tag"),
                        );
                    }
                }
            }
        }
        "url" => {
            if let Some(v) = ctx.req_string(o, b, "value")
                && !is_uri(v)
            {
                ctx.report(at(b, "value"), "must be a URL (RFC 3986)");
            }
        }
        "user-account" => user_account(ctx, o, b),
        "windows-registry-key" => registry_key(ctx, o, b),
        "x509-certificate" => x509(ctx, o, b),
        _ => {}
    }
}

/// SCOs with no ID-contributing property must use a random (version 4) UUID (§6: the
/// deterministic version 5 UUID is derived from those properties).
fn uuid_v4_unless(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str, contributing: &[&str]) {
    if !b.is_empty() || contributing.iter().any(|p| o.contains_key(*p)) {
        return;
    }
    if let Some(id) = ctx.id
        && uuid_version(id) != b'4'
    {
        ctx.report(
            "id",
            format!(
                "without any of {} the id must use a UUIDv4",
                contributing.join(", ")
            ),
        );
    }
}

fn artifact(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    if let Some(m) = ctx.string(o, b, "mime_type")
        && !is_media_type(m)
    {
        ctx.report(
            at(b, "mime_type"),
            "must be a media type of the form type/subtype",
        );
    }
    ctx.string(o, b, "decryption_key");
    if let Some(u) = ctx.string(o, b, "url")
        && !is_uri(u)
    {
        ctx.report(at(b, "url"), "must be a URL");
    }
    let hashes = ctx.hashes(o, b, "hashes");
    match (o.contains_key("payload_bin"), o.contains_key("url")) {
        (true, true) => ctx.report(at(b, "url"), "payload_bin and url must not both be present"),
        (false, false) => ctx.report(b, "one of payload_bin or url must be present"),
        (false, true) if !hashes => ctx.report(at(b, "hashes"), "required when url is present"),
        _ => {}
    }
    ctx.enumeration(
        o,
        b,
        "encryption_algorithm",
        &["AES-256-GCM", "ChaCha20-Poly1305", "mime-type-indicated"],
    );
    if o.contains_key("decryption_key") && !o.contains_key("encryption_algorithm") {
        ctx.report(at(b, "decryption_key"), "requires encryption_algorithm");
    }
    uuid_v4_unless(ctx, o, b, &["hashes", "payload_bin"]);
}

fn email_message(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    let multipart = if ctx.required(o, b, "is_multipart").is_some() {
        ctx.boolean(o, b, "is_multipart")
    } else {
        None
    };
    ctx.timestamp(o, b, "date");
    ctx.strings(o, b, &["content_type", "message_id", "subject", "body"]);
    ctx.reference(o, b, "from_ref", Refs::Types(&["email-addr"]));
    ctx.reference(o, b, "sender_ref", Refs::Types(&["email-addr"]));
    for name in ["to_refs", "cc_refs", "bcc_refs"] {
        ctx.references(o, b, name, Refs::Types(&["email-addr"]));
    }
    ctx.string_list(o, b, "received_lines");
    // §6.6: each header maps to the list of its values (a header may repeat).
    ctx.dict_of(
        o,
        b,
        "additional_header_fields",
        is_string_list,
        "a list of strings",
    );
    ctx.reference(o, b, "raw_email_ref", Refs::Types(&["artifact"]));
    match multipart {
        Some(true) if o.contains_key("body") => {
            ctx.report(
                at(b, "body"),
                "must not be present when is_multipart is true",
            );
        }
        Some(false) if o.contains_key("body_multipart") => {
            ctx.report(
                at(b, "body_multipart"),
                "must not be present when is_multipart is false",
            );
        }
        _ => {}
    }
    ctx.objects(o, b, "body_multipart", |ctx, part, p| {
        ctx.properties(part, p, false);
        ctx.strings(part, p, &["body", "content_type", "content_disposition"]);
        ctx.reference(part, p, "body_raw_ref", Refs::Types(&["artifact", "file"]));
        match (part.contains_key("body"), part.contains_key("body_raw_ref")) {
            (true, true) => ctx.report(p, "body and body_raw_ref must not both be present"),
            (false, false) => ctx.report(p, "one of body or body_raw_ref must be present"),
            _ => {}
        }
    });
    uuid_v4_unless(ctx, o, b, &["from_ref", "subject", "body"]);
}

fn file(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    ctx.hashes(o, b, "hashes");
    ctx.integer(o, b, "size", Some(0), None);
    ctx.strings(o, b, &["name", "name_enc", "mime_type"]);
    ctx.timestamps(o, b, &["ctime", "mtime", "atime"]);
    ctx.reference(o, b, "parent_directory_ref", Refs::Types(&["directory"]));
    ctx.references(o, b, "contains_refs", Refs::Sco);
    ctx.reference(o, b, "content_ref", Refs::Types(&["artifact"]));
    ctx.any_of(o, b, &["hashes", "name"]);
    let Some(exts) = o.get("extensions").and_then(Value::as_object) else {
        return;
    };
    let eb = at(b, "extensions");
    ctx.object(exts, &eb, "ntfs-ext", |ctx, e, p| {
        ctx.string(e, p, "sid");
        ctx.objects(e, p, "alternate_data_streams", |ctx, s, sp| {
            ctx.req_string(s, sp, "name");
            ctx.hashes(s, sp, "hashes");
            ctx.integer(s, sp, "size", Some(0), None);
        });
        ctx.any_of(e, p, &["sid", "alternate_data_streams"]);
    });
    ctx.object(exts, &eb, "raster-image-ext", |ctx, e, p| {
        ctx.integers(
            e,
            p,
            &["image_height", "image_width", "bits_per_pixel"],
            None,
        );
        ctx.dict_of(
            e,
            p,
            "exif_tags",
            is_string_or_integer,
            "a string or an integer",
        );
        ctx.any_of(
            e,
            p,
            &["image_height", "image_width", "bits_per_pixel", "exif_tags"],
        );
    });
    ctx.object(exts, &eb, "pdf-ext", |ctx, e, p| {
        ctx.strings(e, p, &["version", "pdfid0", "pdfid1"]);
        ctx.boolean(e, p, "is_optimized");
        ctx.dict_of(e, p, "document_info_dict", is_string, "a string");
        ctx.any_of(
            e,
            p,
            &[
                "version",
                "is_optimized",
                "document_info_dict",
                "pdfid0",
                "pdfid1",
            ],
        );
    });
    ctx.object(exts, &eb, "archive-ext", |ctx, e, p| {
        if ctx.required(e, p, "contains_refs").is_some() {
            ctx.references(e, p, "contains_refs", Refs::Types(&["file", "directory"]));
        }
        ctx.string(e, p, "comment");
    });
    ctx.object(exts, &eb, "windows-pebinary-ext", |ctx, e, p| {
        pe_binary(ctx, e, p)
    });
}

fn pe_binary(ctx: &mut Ctx<'_>, e: &Map<String, Value>, p: &str) {
    ctx.req_string(e, p, "pe_type");
    ctx.string(e, p, "imphash");
    ctx.integers(
        e,
        p,
        &[
            "number_of_sections",
            "number_of_symbols",
            "size_of_optional_header",
        ],
        Some(0),
    );
    if ctx.timestamp(e, p, "time_date_stamp").is_some()
        && e.get("time_date_stamp")
            .and_then(Value::as_str)
            .is_some_and(|s| s.len() != 20)
    {
        ctx.report(
            at(p, "time_date_stamp"),
            "must be precise to the second (no fraction)",
        );
    }
    ctx.hashes(e, p, "file_header_hashes");
    ctx.object(e, p, "optional_header", |ctx, h, hp| {
        if h.is_empty() {
            ctx.report(hp, "must have at least one property");
        }
        ctx.properties(h, hp, false);
        ctx.integers(
            h,
            hp,
            &[
                "size_of_code",
                "size_of_initialized_data",
                "size_of_uninitialized_data",
                "size_of_image",
                "size_of_headers",
                "size_of_stack_reserve",
                "size_of_stack_commit",
                "size_of_heap_reserve",
                "size_of_heap_commit",
            ],
            Some(0),
        );
        ctx.hashes(h, hp, "hashes");
    });
    ctx.objects(e, p, "sections", |ctx, s, sp| {
        ctx.req_string(s, sp, "name");
        ctx.integer(s, sp, "size", Some(0), None);
        ctx.number(s, sp, "entropy", f64::MIN, f64::MAX);
        ctx.hashes(s, sp, "hashes");
    });
    ctx.any_of(
        e,
        p,
        &[
            "imphash",
            "machine_hex",
            "number_of_sections",
            "time_date_stamp",
            "pointer_to_symbol_table_hex",
            "number_of_symbols",
            "size_of_optional_header",
            "characteristics_hex",
            "file_header_hashes",
            "optional_header",
            "sections",
        ],
    );
}

fn network_traffic(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    ctx.timestamps(o, b, &["start", "end"]);
    ctx.order(o, b, "start", "end", false);
    if ctx.boolean(o, b, "is_active") == Some(true) && o.contains_key("end") {
        ctx.report(at(b, "end"), "must not be present when is_active is true");
    }
    ctx.reference(o, b, "src_ref", Refs::Types(ADDR_TYPES));
    ctx.reference(o, b, "dst_ref", Refs::Types(ADDR_TYPES));
    ctx.any_of(o, b, &["src_ref", "dst_ref"]);
    ctx.integer(o, b, "src_port", Some(0), Some(65535));
    ctx.integer(o, b, "dst_port", Some(0), Some(65535));
    if ctx.required(o, b, "protocols").is_some() {
        ctx.string_list(o, b, "protocols");
    }
    ctx.integers(
        o,
        b,
        &[
            "src_byte_count",
            "dst_byte_count",
            "src_packets",
            "dst_packets",
        ],
        Some(0),
    );
    ctx.dict_of(
        o,
        b,
        "ipfix",
        is_string_or_integer,
        "a string or an integer",
    );
    ctx.reference(o, b, "src_payload_ref", Refs::Types(&["artifact"]));
    ctx.reference(o, b, "dst_payload_ref", Refs::Types(&["artifact"]));
    ctx.references(o, b, "encapsulates_refs", Refs::Types(&["network-traffic"]));
    ctx.reference(
        o,
        b,
        "encapsulated_by_ref",
        Refs::Types(&["network-traffic"]),
    );
    let Some(exts) = o.get("extensions").and_then(Value::as_object) else {
        return;
    };
    let eb = at(b, "extensions");
    ctx.object(exts, &eb, "http-request-ext", |ctx, e, p| {
        ctx.req_string(e, p, "request_method");
        ctx.req_string(e, p, "request_value");
        ctx.string(e, p, "request_version");
        // Each header maps to the list of its values (a header may repeat).
        ctx.dict_of(e, p, "request_header", is_string_list, "a list of strings");
        ctx.integer(e, p, "message_body_length", None, None);
        ctx.reference(e, p, "message_body_data_ref", Refs::Types(&["artifact"]));
    });
    ctx.object(exts, &eb, "icmp-ext", |ctx, e, p| {
        ctx.required(e, p, "icmp_type_hex");
        ctx.required(e, p, "icmp_code_hex");
    });
    ctx.object(exts, &eb, "socket-ext", |ctx, e, p| {
        if ctx.required(e, p, "address_family").is_some() {
            ctx.enumeration(
                e,
                p,
                "address_family",
                &[
                    "AF_UNSPEC",
                    "AF_INET",
                    "AF_IPX",
                    "AF_APPLETALK",
                    "AF_NETBIOS",
                    "AF_INET6",
                    "AF_IRDA",
                    "AF_BTH",
                ],
            );
        }
        ctx.booleans(e, p, &["is_blocking", "is_listening"]);
        ctx.dict_of(e, p, "options", is_integer, "an integer");
        ctx.enumeration(
            e,
            p,
            "socket_type",
            &[
                "SOCK_STREAM",
                "SOCK_DGRAM",
                "SOCK_RAW",
                "SOCK_RDM",
                "SOCK_SEQPACKET",
            ],
        );
        ctx.integer(e, p, "socket_descriptor", Some(0), None);
        ctx.integer(e, p, "socket_handle", None, None);
    });
    ctx.object(exts, &eb, "tcp-ext", |ctx, e, p| {
        ctx.any_of(e, p, &["src_flags_hex", "dst_flags_hex"]);
    });
}

fn process(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    ctx.boolean(o, b, "is_hidden");
    ctx.integer(o, b, "pid", None, None);
    ctx.timestamp(o, b, "created_time");
    ctx.strings(o, b, &["cwd", "command_line"]);
    ctx.dict_of(o, b, "environment_variables", is_string, "a string");
    ctx.references(
        o,
        b,
        "opened_connection_refs",
        Refs::Types(&["network-traffic"]),
    );
    ctx.reference(o, b, "creator_user_ref", Refs::Types(&["user-account"]));
    ctx.reference(o, b, "image_ref", Refs::Types(&["file"]));
    ctx.reference(o, b, "parent_ref", Refs::Types(&["process"]));
    ctx.references(o, b, "child_refs", Refs::Types(&["process"]));
    at_least_one_property(ctx, o, b);
    // A process has no ID-contributing properties, so its id is always random.
    uuid_v4_unless(ctx, o, b, &[]);
    let Some(exts) = o.get("extensions").and_then(Value::as_object) else {
        return;
    };
    let eb = at(b, "extensions");
    ctx.object(exts, &eb, "windows-process-ext", |ctx, e, p| {
        ctx.booleans(e, p, &["aslr_enabled", "dep_enabled"]);
        ctx.strings(e, p, &["priority", "owner_sid", "window_title"]);
        ctx.dict(e, p, "startup_info");
        ctx.enumeration(
            e,
            p,
            "integrity_level",
            &["low", "medium", "high", "system"],
        );
        ctx.any_of(
            e,
            p,
            &[
                "aslr_enabled",
                "dep_enabled",
                "priority",
                "owner_sid",
                "window_title",
                "startup_info",
                "integrity_level",
            ],
        );
    });
    ctx.object(exts, &eb, "windows-service-ext", |ctx, e, p| {
        ctx.strings(e, p, &["service_name", "display_name", "group_name"]);
        ctx.string_list(e, p, "descriptions");
        ctx.enumeration(
            e,
            p,
            "start_type",
            &[
                "SERVICE_AUTO_START",
                "SERVICE_BOOT_START",
                "SERVICE_DEMAND_START",
                "SERVICE_DISABLED",
                "SERVICE_SYSTEM_ALERT",
            ],
        );
        ctx.references(e, p, "service_dll_refs", Refs::Types(&["file"]));
        ctx.enumeration(
            e,
            p,
            "service_type",
            &[
                "SERVICE_KERNEL_DRIVER",
                "SERVICE_FILE_SYSTEM_DRIVER",
                "SERVICE_WIN32_OWN_PROCESS",
                "SERVICE_WIN32_SHARE_PROCESS",
            ],
        );
        ctx.enumeration(
            e,
            p,
            "service_status",
            &[
                "SERVICE_CONTINUE_PENDING",
                "SERVICE_PAUSE_PENDING",
                "SERVICE_PAUSED",
                "SERVICE_RUNNING",
                "SERVICE_START_PENDING",
                "SERVICE_STOP_PENDING",
                "SERVICE_STOPPED",
            ],
        );
        ctx.any_of(
            e,
            p,
            &[
                "service_name",
                "descriptions",
                "display_name",
                "group_name",
                "start_type",
                "service_dll_refs",
                "service_type",
                "service_status",
            ],
        );
    });
}

fn user_account(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    ctx.strings(
        o,
        b,
        &[
            "user_id",
            "credential",
            "account_login",
            "account_type",
            "display_name",
        ],
    );
    ctx.booleans(
        o,
        b,
        &[
            "is_service_account",
            "is_privileged",
            "can_escalate_privs",
            "is_disabled",
        ],
    );
    ctx.timestamps(
        o,
        b,
        &[
            "account_created",
            "account_expires",
            "credential_last_changed",
            "account_first_login",
            "account_last_login",
        ],
    );
    at_least_one_property(ctx, o, b);
    uuid_v4_unless(ctx, o, b, &["account_type", "user_id", "account_login"]);
    let Some(exts) = o.get("extensions").and_then(Value::as_object) else {
        return;
    };
    ctx.object(
        exts,
        &at(b, "extensions"),
        "unix-account-ext",
        |ctx, e, p| {
            ctx.integer(e, p, "gid", None, None);
            ctx.string_list(e, p, "groups");
            ctx.strings(e, p, &["home_dir", "shell"]);
            ctx.any_of(e, p, &["gid", "groups", "home_dir", "shell"]);
        },
    );
}

fn registry_key(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    if let Some(key) = ctx.string(o, b, "key") {
        let hive = key.split('\\').next().unwrap_or("");
        if ["HKLM", "HKCC", "HKCR", "HKCU", "HKU"]
            .iter()
            .any(|abbr| hive.eq_ignore_ascii_case(abbr))
        {
            ctx.report(
                at(b, "key"),
                "the hive must be written out in full, e.g. HKEY_LOCAL_MACHINE",
            );
        }
    }
    ctx.objects(o, b, "values", |ctx, v, p| {
        ctx.strings(v, p, &["name", "data"]);
        ctx.enumeration(
            v,
            p,
            "data_type",
            &[
                "REG_NONE",
                "REG_SZ",
                "REG_EXPAND_SZ",
                "REG_BINARY",
                "REG_DWORD",
                "REG_DWORD_BIG_ENDIAN",
                "REG_DWORD_LITTLE_ENDIAN",
                "REG_LINK",
                "REG_MULTI_SZ",
                "REG_RESOURCE_LIST",
                "REG_FULL_RESOURCE_DESCRIPTION",
                "REG_RESOURCE_REQUIREMENTS_LIST",
                "REG_QWORD",
                "REG_INVALID_TYPE",
            ],
        );
        ctx.any_of(v, p, &["name", "data", "data_type"]);
    });
    ctx.timestamp(o, b, "modified_time");
    ctx.reference(o, b, "creator_user_ref", Refs::Types(&["user-account"]));
    ctx.integer(o, b, "number_of_subkeys", None, None);
    at_least_one_property(ctx, o, b);
    uuid_v4_unless(ctx, o, b, &["key", "values"]);
}

fn x509(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    ctx.boolean(o, b, "is_self_signed");
    ctx.hashes(o, b, "hashes");
    ctx.strings(
        o,
        b,
        &[
            "version",
            "serial_number",
            "signature_algorithm",
            "issuer",
            "subject",
            "subject_public_key_algorithm",
            "subject_public_key_modulus",
        ],
    );
    ctx.timestamps(o, b, &["validity_not_before", "validity_not_after"]);
    ctx.integer(o, b, "subject_public_key_exponent", None, None);
    ctx.object(o, b, "x509_v3_extensions", |ctx, e, p| {
        if e.is_empty() {
            ctx.report(p, "must have at least one property");
        }
        ctx.properties(e, p, false);
        ctx.timestamps(
            e,
            p,
            &[
                "private_key_usage_period_not_before",
                "private_key_usage_period_not_after",
            ],
        );
    });
    at_least_one_property(ctx, o, b);
    uuid_v4_unless(ctx, o, b, &["hashes", "serial_number"]);
}

/// Process, user-account, windows-registry-key and x509-certificate objects must carry at least
/// one property of their own besides the common ones.
fn at_least_one_property(ctx: &mut Ctx<'_>, o: &Map<String, Value>, b: &str) {
    const COMMON: [&str; 7] = [
        "type",
        "id",
        "spec_version",
        "object_marking_refs",
        "granular_markings",
        "defanged",
        "extensions",
    ];
    let own = o.keys().any(|k| !COMMON.contains(&k.as_str()))
        || o.get("extensions")
            .and_then(Value::as_object)
            .is_some_and(|m| !m.is_empty());
    if !own {
        ctx.report(b, "must contain at least one property specific to its type");
    }
}
