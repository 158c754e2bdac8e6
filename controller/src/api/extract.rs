//! Request extractors that answer malformed input with the API's error
//! shape, naming the offending field.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::state::InvalidField;

/// A query string, refused with 400 and the parameter's name when malformed.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A path segment, refused with 400 when it does not parse.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request(format!("query string: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad_request(format!("path: {}", e.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        ApiError::bad_request(format!("request body: {}", e.body_text()))
    }
}

/// A JSON body. Syntax errors give 400 with the line and column; a value of
/// the wrong type, a missing or an unknown field gives 422 naming the field
/// by its path (`tasks[0].cpus`).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// The field a serde message names in backticks (`missing field `src``).
fn quoted_field(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Decodes `body` as `T`, naming the field at fault.
///
/// # Errors
/// [`ApiError`] 400 (not JSON) or 422 (JSON of the wrong shape).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let mut field = if path == "." { String::new() } else { path };
                // A missing field is reported at its parent's path.
                if let Some(name) = quoted_field(&message) {
                    if message.starts_with("missing field") {
                        field = if field.is_empty() {
                            name.to_string()
                        } else {
                            format!("{field}.{name}")
                        };
                    }
                }
                if field.is_empty() {
                    field = "(body)".into();
                }
                ApiError::invalid(InvalidField::new(field, message))
            }
            _ => ApiError::bad_request(format!("request body is not valid JSON: {message}")),
        }
    })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime_lite::Mime>().ok())
            .is_some_and(|m| m.is_json());
        if !json {
            return Err(ApiError::unsupported_media_type(
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let body = Bytes::from_request(req, state).await?;
        decode(&body).map(ApiJson)
    }
}

/// Just enough media-type parsing to accept `application/json` and
/// `application/*+json` with parameters.
mod mime_lite {
    pub struct Mime(String);

    impl std::str::FromStr for Mime {
        type Err = ();

        fn from_str(s: &str) -> Result<Self, ()> {
            let essence = s.split(';').next().ok_or(())?.trim().to_ascii_lowercase();
            Ok(Self(essence))
        }
    }

    impl Mime {
        pub fn is_json(&self) -> bool {
            self.0 == "application/json"
                || (self.0.starts_with("application/") && self.0.ends_with("+json"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::JobSpec;
    use crate::state::IntentSpec;

    fn field_of<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        let e = decode::<T>(body.as_bytes()).unwrap_err();
        let r = axum::response::IntoResponse::into_response(e);
        assert_eq!(r.status(), 422);
        let (_, b) = r.into_parts();
        let b = futures::executor::block_on(axum::body::to_bytes(b, 1 << 16)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        v["details"]["field"].as_str().unwrap().to_string()
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        assert_eq!(field_of::<IntentSpec>(r#"{"name":"a","dst":"h2"}"#), "src");
        assert_eq!(
            field_of::<IntentSpec>(r#"{"name":"a","src":"h1","dst":"h2","colour":1}"#),
            "colour"
        );
        assert_eq!(
            field_of::<IntentSpec>(r#"{"name":"a","src":"h1","dst":"h2","priority":"high"}"#),
            "priority"
        );
        assert_eq!(
            field_of::<JobSpec>(r#"{"name":"j","tasks":[{"name":"t","cpus":-1}]}"#),
            "tasks[0].cpus"
        );
        let e = decode::<IntentSpec>(b"{not json").unwrap_err();
        assert_eq!(e.status(), 400);
    }
}
