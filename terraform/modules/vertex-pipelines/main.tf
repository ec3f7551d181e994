# Vertex AI Pipelines platform for kubepipe: the pipeline-root bucket, the
# runtime-image repository, and two service accounts with narrow roles.

locals {
  bucket_name = coalesce(var.bucket_name, "${var.project_id}-${var.name_prefix}-pipelines")
  labels      = merge({ managed-by = "terraform", app = "kubepipe" }, var.labels)
  use_cmek    = var.kms_key_name != null

  services = toset(concat([
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ], local.use_cmek ? ["cloudkms.googleapis.com"] : []))
}

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_project_service" "this" {
  for_each = local.services

  project = var.project_id
  service = each.value
  # Other stacks in the project may use the same APIs.
  disable_on_destroy = false
}
