//! The `file_base64` parameter set (api-notes "Files"): what the runner uploads before a send.
//!
//! In: a send action and its rendered parameter values. Out: an [`Upload`] (the decoded bytes,
//! the name, the MIME type and the file type), the three requests of the documented v2 upload
//! flow, and the send with the resulting `fileId` put at [`catalog::file_id_pointer`].
//!
//! The scheduler runs the flow (each request under the run's rate limiter, retried as
//! retry-safe: an upload has no visible effect, at worst an unused file is left behind):
//! 1. `GET /core/v2/file?Type=..&Name=..&MimeType=..` → `{tempFileId, urlUpload}`;
//! 2. `PUT <urlUpload>` with the raw bytes, `Content-Type` the MIME type, no `Authorization`
//!    ([`crate::execute::Client::put_upload`]);
//! 3. `POST /core/v2/file` `{"tempFileId": ..}` → a File whose `id` is the `fileId`.
//!
//! Decisions:
//! * Base64 is the standard alphabet; padding may be present or not; ASCII whitespace (line
//!   breaks of wrapped base64) is ignored. A value that decodes to nothing is refused.
//! * `MimeType` is always sent: `file_mime_type` when given, else guessed from the extension of
//!   `file_name`, else `application/octet-stream`. The same value is the `Content-Type` of the
//!   `PUT`, so a pre-signed URL that signs the type always matches.

use indexmap::IndexMap;
use serde_json::{json, Value};

use crate::catalog::{self, ActionSpec, HttpRequest, Method};

/// The upload route of the v2 flow (`GET` to start, `POST` to confirm).
pub const FILE_ROUTE: &str = "/core/v2/file";

/// A file to upload before a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub name: String,
    pub mime_type: String,
    /// `UNDEFINED`, `PDF`, ... (api-notes "Files").
    pub file_type: String,
    pub bytes: Vec<u8>,
}

pub use crate::plan::decode_base64;

/// The MIME type of a file name's extension, for the common kinds; `None` when unknown.
pub fn mime_of(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "xml" => "application/xml",
        "zip" => "application/zip",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xls" => "application/vnd.ms-excel",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "3gp" => "video/3gpp",
        "mov" => "video/quicktime",
        _ => return None,
    })
}

fn text_param(params: &IndexMap<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Upload {
    /// The upload a send's parameters ask for: `None` without `file_base64` (or for an action
    /// that takes no file). The parameters have already passed [`catalog::build`], so
    /// `file_name` is present and `file_type` is valid. The error names the parameter.
    ///
    /// With `decode` false (a dry run whose `file_base64` is a placeholder for an output it does
    /// not have), the bytes are left empty.
    pub fn from_params(
        action: &ActionSpec,
        params: &IndexMap<String, Value>,
        decode: bool,
    ) -> Result<Option<Upload>, String> {
        catalog::file_id_pointer(action)
            .and_then(|_| text_param(params, "file_base64"))
            .map(|b64| Upload::new(action, params, &b64, decode))
            .transpose()
    }

    fn new(
        action: &ActionSpec,
        params: &IndexMap<String, Value>,
        b64: &str,
        decode: bool,
    ) -> Result<Upload, String> {
        let bytes = if decode {
            decode_base64(b64).map_err(|e| format!("parameter `file_base64`: {e}"))?
        } else {
            Vec::new()
        };
        let name = text_param(params, "file_name")
            .ok_or_else(|| "parameter `file_name` is required with `file_base64`".to_owned())?;
        let mime_type = text_param(params, "file_mime_type")
            .or_else(|| mime_of(&name).map(str::to_owned))
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let file_type = match (action.param("file_type"), params.get("file_type")) {
            (Some(spec), Some(v)) if text_param(params, "file_type").is_some() => {
                catalog::convert(spec, v)
                    .map_err(|e| format!("parameter `file_type`: {e}"))?
                    .as_str()
                    .unwrap_or("UNDEFINED")
                    .to_owned()
            }
            _ => "UNDEFINED".to_owned(),
        };
        Ok(Upload {
            name,
            mime_type,
            file_type,
            bytes,
        })
    }

    /// What a dry run shows as the `fileId`.
    pub fn placeholder(&self) -> String {
        format!("<upload of {}>", self.name)
    }

    /// Step 1: `GET /core/v2/file?Type=..&Name=..&MimeType=..`.
    pub fn start_request(&self) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            path: FILE_ROUTE.to_owned(),
            query: vec![
                ("Type".to_owned(), self.file_type.clone()),
                ("Name".to_owned(), self.name.clone()),
                ("MimeType".to_owned(), self.mime_type.clone()),
            ],
            body: None,
        }
    }

    /// Step 3: `POST /core/v2/file` `{"tempFileId": ..}`.
    pub fn confirm_request(temp_file_id: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Post,
            path: FILE_ROUTE.to_owned(),
            query: Vec::new(),
            body: Some(json!({ "tempFileId": temp_file_id })),
        }
    }
}

/// `{tempFileId, urlUpload}` from step 1's answer.
pub fn parse_started(body: &Value) -> Result<(String, String), String> {
    let get = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    match (get("tempFileId"), get("urlUpload")) {
        (Some(t), Some(u)) => Ok((t, u)),
        _ => Err(format!(
            "the answer has no `tempFileId` and `urlUpload`: {}",
            crate::execute::client::truncate(&body.to_string(), 200)
        )),
    }
}

/// The file `id` from step 3's answer.
pub fn parse_confirmed(body: &Value) -> Result<String, String> {
    match body.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!(
            "the answer has no file `id`: {}",
            crate::execute::client::truncate(&body.to_string(), 200)
        )),
    }
}

/// Puts `file_id` at `action`'s file id pointer in `req`'s body.
pub fn set_file_id(action: &ActionSpec, req: &mut HttpRequest, file_id: &str) {
    let Some(pointer) = catalog::file_id_pointer(action) else {
        return;
    };
    let mut cur = req
        .body
        .get_or_insert_with(|| Value::Object(serde_json::Map::new()));
    let mut parts = pointer.split('/').skip(1).peekable();
    while let Some(part) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(serde_json::Map::new());
        }
        let map = cur.as_object_mut().expect("made an object just above");
        if parts.peek().is_none() {
            map.insert(part.to_owned(), Value::String(file_id.to_owned()));
            return;
        }
        cur = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::lookup;

    const SESSION: &str = "5f1c0d2e-0000-4000-8000-000000000001";

    fn params(pairs: &[(&str, Value)]) -> IndexMap<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn decodes_padded_unpadded_and_wrapped_base64() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64(" aGVs\nbG8=\r\n").unwrap(), b"hello");
        assert_eq!(decode_base64("AAEC/w==").unwrap(), [0, 1, 2, 255]);
    }

    #[test]
    fn refuses_invalid_and_empty_base64() {
        let e = decode_base64("aGV*bG8=").unwrap_err();
        assert!(e.starts_with("invalid base64"), "{e}");
        assert!(decode_base64("a").is_err());
        assert!(decode_base64("aGVsbG8=aGVs").is_err());
        assert!(
            decode_base64("aGVsbG8-").is_err(),
            "URL-safe alphabet is refused"
        );
        assert!(decode_base64("  \n").unwrap_err().contains("empty"));
    }

    #[test]
    fn guesses_mime_types_from_the_extension() {
        assert_eq!(mime_of("invoice.PDF"), Some("application/pdf"));
        assert_eq!(mime_of("a.b.jpeg"), Some("image/jpeg"));
        assert_eq!(mime_of("README"), None);
        assert_eq!(mime_of("x.unknownext"), None);
    }

    #[test]
    fn builds_the_upload_from_the_parameters() {
        let spec = lookup("session.send_file").unwrap();
        let p = params(&[
            ("session_id", json!(SESSION)),
            ("file_base64", json!("aGVsbG8=")),
            ("file_name", json!("note.txt")),
        ]);
        let up = Upload::from_params(spec, &p, true).unwrap().unwrap();
        assert_eq!(
            up,
            Upload {
                name: "note.txt".into(),
                mime_type: "text/plain".into(),
                file_type: "UNDEFINED".into(),
                bytes: b"hello".to_vec(),
            }
        );
        assert_eq!(up.placeholder(), "<upload of note.txt>");
        let start = up.start_request();
        assert_eq!(
            start.path_and_query(),
            "/core/v2/file?Type=UNDEFINED&Name=note.txt&MimeType=text%2Fplain"
        );
        let confirm = Upload::confirm_request("tmp-1");
        assert_eq!(confirm.method, Method::Post);
        assert_eq!(confirm.body, Some(json!({"tempFileId": "tmp-1"})));

        let p = params(&[
            ("session_id", json!(SESSION)),
            ("file_base64", json!("aGVsbG8=")),
            ("file_name", json!("scan")),
            ("file_mime_type", json!("image/tiff")),
            ("file_type", json!("IMAGE")),
        ]);
        let up = Upload::from_params(spec, &p, true).unwrap().unwrap();
        assert_eq!(
            (up.mime_type.as_str(), up.file_type.as_str()),
            ("image/tiff", "IMAGE")
        );

        let p = params(&[
            ("file_base64", json!("aGVsbG8=")),
            ("file_name", json!("x")),
        ]);
        let up = Upload::from_params(spec, &p, true).unwrap().unwrap();
        assert_eq!(up.mime_type, "application/octet-stream");
    }

    #[test]
    fn no_upload_without_file_base64_and_a_named_error_for_bad_base64() {
        let spec = lookup("session.send_file").unwrap();
        let p = params(&[("file_url", json!("https://x/a.pdf"))]);
        assert_eq!(Upload::from_params(spec, &p, true), Ok(None));
        let p = params(&[("file_base64", json!("@@@")), ("file_name", json!("a.pdf"))]);
        let e = Upload::from_params(spec, &p, true).unwrap_err();
        assert!(
            e.starts_with("parameter `file_base64`: invalid base64"),
            "{e}"
        );
    }

    #[test]
    fn parses_the_flow_answers() {
        assert_eq!(
            parse_started(&json!({"tempFileId": "t", "urlUpload": "http://h/u"})),
            Ok(("t".into(), "http://h/u".into()))
        );
        assert!(parse_started(&json!({"tempFileId": "t"})).is_err());
        assert_eq!(
            parse_confirmed(&json!({"id": "f1", "size": 3})),
            Ok("f1".into())
        );
        assert!(parse_confirmed(&json!({"name": "x"})).is_err());
    }

    #[test]
    fn sets_the_file_id_at_the_actions_pointer() {
        let quick = lookup("message.send_file").unwrap();
        let mut req = HttpRequest {
            method: Method::Post,
            path: "/chat/v1/message/send".into(),
            query: Vec::new(),
            body: Some(json!({"to": "5511999999999"})),
        };
        set_file_id(quick, &mut req, "f1");
        assert_eq!(
            req.body,
            Some(json!({"to": "5511999999999", "body": {"fileId": "f1"}}))
        );
        let session = lookup("session.send_file").unwrap();
        let mut req = HttpRequest {
            method: Method::Post,
            path: "/x".into(),
            query: Vec::new(),
            body: None,
        };
        set_file_id(session, &mut req, "f2");
        assert_eq!(req.body, Some(json!({"fileId": "f2"})));
    }
}
