//! Tenantry's pure core: a tenant declaration in, every isolation layer out.
//!
//! Nothing here touches a file, a socket or a clock. The I/O edges (`tenantry-gitops`, the
//! cluster client, the admission server) read input, call into this crate, and act on what
//! it returns; that keeps every decision testable as a plain function and keeps GitOps
//! output, direct apply and the operator from ever disagreeing about what a tenant is.
//!
//! The flow is `parse → resolve → render`: [`document`] reads YAML with field-path errors,
//! [`resolve::PlatformContext`] validates a platform once and resolves each tenant against
//! it, and [`render::render`] turns a resolved tenant into [`object::DesiredObject`]s.
#![forbid(unsafe_code)]

pub mod document;
pub mod error;
pub mod names;
pub mod object;
pub mod placement;
pub mod plan;
pub mod quota;
pub mod registry;
pub mod render;
pub mod resolve;
pub mod semver_range;
mod validate;
pub mod yaml;

pub use error::{FieldError, Invalid};
pub use object::{Artifact, DesiredObject, Layer, Rendered};
pub use resolve::{PlatformContext, ResolvedTenant};

/// Resolve and render one tenant file.
pub fn render_tenant(
    ctx: &PlatformContext,
    file: &tenantry_api::tenant::TenantFile,
) -> Result<Rendered, Invalid> {
    let resolved = ctx.resolve(file)?;
    Ok(render::render(ctx, &resolved))
}
