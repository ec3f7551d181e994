# Two identities. The runner is what pipeline tasks run as; the deployer is
# what CI uses to push images and submit / schedule pipelines. Roles are bound
# on the bucket, the repository and the runner account where GCP allows it;
# only Vertex AI and logging roles are project-wide (they have no resource level).

resource "google_service_account" "runner" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-runner"
  display_name = "kubepipe pipeline runner"
  description  = "Identity of kubepipe pipeline tasks on Vertex AI Pipelines and, through Workload Identity, on GKE."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "deployer" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-deployer"
  display_name = "kubepipe deployer (CI/CD)"
  description  = "Identity of CI/CD: pushes runtime images, submits and schedules kubepipe pipelines."

  depends_on = [google_project_service.this]
}

locals {
  runner_member   = "serviceAccount:${google_service_account.runner.email}"
  deployer_member = "serviceAccount:${google_service_account.deployer.email}"

  runner_project_roles = toset([
    "roles/aiplatform.user",
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
  ])
  deployer_project_roles = toset([
    "roles/aiplatform.user",
  ])
}

resource "google_project_iam_member" "runner" {
  for_each = local.runner_project_roles

  project = var.project_id
  role    = each.value
  member  = local.runner_member
}

resource "google_project_iam_member" "deployer" {
  for_each = local.deployer_project_roles

  project = var.project_id
  role    = each.value
  member  = local.deployer_member
}

# Bucket: both read and write objects; neither can change the bucket or its IAM.
resource "google_storage_bucket_iam_member" "runner_objects" {
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.objectUser"
  member = local.runner_member
}

resource "google_storage_bucket_iam_member" "runner_bucket_read" {
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.legacyBucketReader"
  member = local.runner_member
}

resource "google_storage_bucket_iam_member" "deployer_objects" {
  bucket = google_storage_bucket.pipeline_root.name
  role   = "roles/storage.objectUser"
  member = local.deployer_member
}

# Images: the runner pulls, the deployer pushes.
resource "google_artifact_registry_repository_iam_member" "runner_reader" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.runner_member
}

resource "google_artifact_registry_repository_iam_member" "deployer_writer" {
  project    = var.project_id
  location   = google_artifact_registry_repository.images.location
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.writer"
  member     = local.deployer_member
}

# The deployer submits jobs that run as the runner (actAs on that one account only).
resource "google_service_account_iam_member" "deployer_acts_as_runner" {
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.deployer_member
}

# Tasks that run as the runner and start Vertex work as the runner: a deploy step's Endpoint.deploy and a
# trigger-retrain's PipelineJob both name the profile's service_account, which needs actAs on it.
resource "google_service_account_iam_member" "runner_acts_as_itself" {
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.serviceAccountUser"
  member             = local.runner_member
}

# GitHub Actions -> deployer, without JSON keys: only the named repository and ref.
resource "google_iam_workload_identity_pool" "github" {
  count = var.github_repository == null ? 0 : 1

  project                   = var.project_id
  workload_identity_pool_id = "${var.name_prefix}-github"
  display_name              = "GitHub Actions"
  description               = "OIDC tokens of the kubepipe CI/CD workflows."

  depends_on = [google_project_service.this]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  #checkov:skip=CKV_GCP_125:The condition pins assertion.sub to repo:<owner/name>:ref:<ref>; checkov cannot resolve var.github_repository (null by default) and reads the claim as unpinned.
  count = var.github_repository == null ? 0 : 1

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github[0].workload_identity_pool_id
  workload_identity_pool_provider_id = "github-oidc"
  display_name                       = "GitHub OIDC"
  # The subject names the repository and the ref, so a fork or another branch gets nothing.
  attribute_condition = "assertion.sub == \"repo:${var.github_repository}:ref:${var.github_ref}\""

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
  }

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_deployer" {
  count = var.github_repository == null ? 0 : 1

  service_account_id = google_service_account.deployer.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/attribute.repository/${var.github_repository}"
}
