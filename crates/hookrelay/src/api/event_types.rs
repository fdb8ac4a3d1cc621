//! The event catalog: which event types exist, what they mean, an example `data`, and an
//! optional JSON Schema that emits of the type must satisfy. Built-ins merge with tenant rows.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_domain::time::{now_millis, to_rfc3339};
use hookrelay_domain::validate::{is_valid_event_type, FieldError};
use hookrelay_domain::Action;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{JsonBody, StrictQuery, MAX_LIMIT};
use super::views::ListView;
use super::AppState;
use crate::destinations::catalog::{self, CatalogEntry, MAX_DOCUMENT_BYTES, MAX_TENANT_TYPES};
use crate::store::EventType;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/event-types", get(list).post(create))
        .route(
            "/api/v1/event-types/{name}",
            get(read).patch(update).delete(remove),
        )
}

/// One type of the catalog.
#[derive(Serialize, ToSchema)]
pub struct EventTypeView {
    pub name: String,
    pub description: String,
    /// JSON Schema that `data` must satisfy at `POST /api/v1/events`; null: not checked.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// An example `data`, any JSON value (also what `preview` renders when given no data).
    #[schema(value_type = Option<Value>)]
    pub example: Option<Value>,
    /// One of the platform's types (a tenant may customise it; deleting the customisation
    /// restores it).
    pub built_in: bool,
    /// Null for a built-in this tenant has not customised.
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<&CatalogEntry> for EventTypeView {
    fn from(e: &CatalogEntry) -> Self {
        Self {
            name: e.name.clone(),
            description: e.description.clone(),
            schema: e.schema.clone(),
            example: e.example.clone(),
            built_in: e.built_in,
            created_at: e.created_at.map(to_rfc3339),
            updated_at: e.updated_at.map(to_rfc3339),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEventType {
    /// Dotted event type, e.g. `order.paid`.
    pub name: String,
    pub description: Option<String>,
    /// A JSON Schema (draft 4 to 2020-12; `$schema` picks, 2020-12 by default). Remote `$ref`s
    /// are not fetched.
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Value>,
    /// An example `data`; must satisfy `schema` when both are given.
    #[schema(value_type = Option<Value>)]
    pub example: Option<Value>,
}

/// Any field but `name`; `null` clears `schema` or `example`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEventType {
    pub description: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    pub schema: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Value>)]
    pub example: Option<Option<Value>>,
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    // `null` arrives as `Value::Null`: it means "clear".
    Value::deserialize(d).map(|v| Some(Some(v).filter(|v| !v.is_null())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Checks description, schema and example together, collecting every problem.
fn validate(description: &str, schema: Option<&Value>, example: Option<&Value>) -> ApiResult<()> {
    let mut errors = Vec::new();
    if description.len() > 1024 {
        errors.push(FieldError::new(
            "description",
            "must be at most 1024 characters",
        ));
    }
    let too_big = |v: &Value| v.to_string().len() > MAX_DOCUMENT_BYTES;
    let mut validator = None;
    if let Some(s) = schema {
        if too_big(s) {
            errors.push(FieldError::new("schema", "must be at most 64 KiB"));
        } else {
            match catalog::compile(s) {
                Ok(v) => validator = Some(v),
                Err(m) => errors.push(FieldError::new("schema", m)),
            }
        }
    }
    if let Some(ex) = example {
        if too_big(ex) {
            errors.push(FieldError::new("example", "must be at most 64 KiB"));
        } else if let Some(v) = &validator {
            errors.extend(catalog::errors(v, ex, "example"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn check_name(name: &str) -> ApiResult<()> {
    if is_valid_event_type(name) {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            "must be a dotted event type like order.paid (letters, digits, _ - :)",
        ))
    }
}

#[utoipa::path(get, path = "/api/v1/event-types", tag = "event-types", operation_id = "event_types.list",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query, description = "the last name of the previous page")),
    responses((status = 200, body = ListView<EventTypeView>, description = "built-in and the tenant's own types, **by name** (not newest first)")),
    security(("bearer" = [])))]
pub async fn list(
    State(s): State<AppState>,
    caller: Caller,
    StrictQuery(q): StrictQuery<ListQuery>,
) -> ApiResult<Json<ListView<EventTypeView>>> {
    caller.require(Action::Read)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::field("limit", "must be between 1 and 1000"));
    }
    let all = catalog::load(s.store.as_ref(), &caller.tenant).await?;
    let mut data: Vec<EventTypeView> = all
        .values()
        .filter(|e| {
            q.cursor
                .as_ref()
                .is_none_or(|c| e.name.as_str() > c.as_str())
        })
        .take(limit as usize + 1)
        .map(EventTypeView::from)
        .collect();
    let next_cursor = if data.len() > limit as usize {
        data.truncate(limit as usize);
        data.last().map(|e| e.name.clone())
    } else {
        None
    };
    Ok(Json(ListView { data, next_cursor }))
}

#[utoipa::path(get, path = "/api/v1/event-types/{name}", tag = "event-types", operation_id = "event_types.get",
    responses((status = 200, body = EventTypeView), (status = 404)), security(("bearer" = [])))]
pub async fn read(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<EventTypeView>> {
    caller.require(Action::Read)?;
    let entry = catalog::get(s.store.as_ref(), &caller.tenant, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))?;
    Ok(Json(EventTypeView::from(&entry)))
}

#[utoipa::path(post, path = "/api/v1/event-types", tag = "event-types", operation_id = "event_types.create", request_body = CreateEventType,
    responses((status = 201, body = EventTypeView), (status = 409, description = "the type exists (built-ins included: PATCH them instead)"),
              (status = 422, description = "invalid name, schema (not a JSON Schema) or example (`example.<path>` when it fails the schema)")),
    security(("bearer" = [])))]
pub async fn create(
    State(s): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateEventType>,
) -> ApiResult<(StatusCode, Json<EventTypeView>)> {
    caller.require(Action::Write)?;
    check_name(&body.name)?;
    let description = body.description.unwrap_or_default();
    validate(&description, body.schema.as_ref(), body.example.as_ref())?;
    if catalog::built_in(&body.name).is_some() {
        return Err(ApiError::Conflict(format!(
            "{} is a built-in type; PATCH /api/v1/event-types/{} to customise it",
            body.name, body.name
        )));
    }
    if s.store.list_event_types(&caller.tenant).await?.len() >= MAX_TENANT_TYPES {
        return Err(ApiError::Conflict(format!(
            "the catalog holds at most {MAX_TENANT_TYPES} types of a tenant's own"
        )));
    }
    let now = now_millis();
    let row = EventType {
        tenant_id: caller.tenant.clone(),
        name: body.name,
        description,
        schema: body.schema,
        example: body.example,
        created_at: now,
        updated_at: now,
    };
    s.store.create_event_type(&row).await?;
    s.schemas.invalidate(&caller.tenant);
    let entry = catalog::get(s.store.as_ref(), &caller.tenant, &row.name)
        .await?
        .ok_or_else(|| ApiError::Internal("event type vanished".into()))?;
    Ok((StatusCode::CREATED, Json(EventTypeView::from(&entry))))
}

#[utoipa::path(patch, path = "/api/v1/event-types/{name}", tag = "event-types", operation_id = "event_types.update", request_body = UpdateEventType,
    responses((status = 200, body = EventTypeView, description = "a built-in is customised for this tenant"), (status = 404), (status = 422)),
    security(("bearer" = [])))]
pub async fn update(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<UpdateEventType>,
) -> ApiResult<Json<EventTypeView>> {
    caller.require(Action::Write)?;
    let current = catalog::get(s.store.as_ref(), &caller.tenant, &name)
        .await?
        .ok_or_else(|| ApiError::not_found("event type"))?;
    let description = body.description.unwrap_or(current.description);
    let schema = body.schema.unwrap_or(current.schema);
    let example = body.example.unwrap_or(current.example);
    validate(&description, schema.as_ref(), example.as_ref())?;
    let now = now_millis();
    s.store
        .put_event_type(&EventType {
            tenant_id: caller.tenant.clone(),
            name: name.clone(),
            description,
            schema,
            example,
            created_at: current.created_at.unwrap_or(now),
            updated_at: now,
        })
        .await?;
    s.schemas.invalidate(&caller.tenant);
    let entry = catalog::get(s.store.as_ref(), &caller.tenant, &name)
        .await?
        .ok_or_else(|| ApiError::Internal("event type vanished".into()))?;
    Ok(Json(EventTypeView::from(&entry)))
}

#[utoipa::path(delete, path = "/api/v1/event-types/{name}", tag = "event-types", operation_id = "event_types.delete",
    responses((status = 204, description = "deleted; for a customised built-in, the built-in is restored"),
              (status = 404), (status = 409, description = "a built-in without customisation cannot be deleted")),
    security(("bearer" = [])))]
pub async fn remove(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    caller.require(Action::Write)?;
    if s.store
        .get_event_type(&caller.tenant, &name)
        .await?
        .is_none()
    {
        return Err(match catalog::built_in(&name) {
            Some(_) => {
                ApiError::Conflict(format!("{name} is a built-in type and cannot be deleted"))
            }
            None => ApiError::not_found("event type"),
        });
    }
    s.store
        .delete_event_type(&caller.tenant, &name)
        .await
        .map_err(super::error::missing("event type"))?;
    s.schemas.invalidate(&caller.tenant);
    Ok(StatusCode::NO_CONTENT)
}
