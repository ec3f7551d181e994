output "project_id" {
  description = "Project the platform lives in."
  value       = var.project_id
}

output "project_number" {
  description = "Numeric project id (used in Vertex network and Workload Identity names)."
  value       = data.google_project.this.number
}

output "region" {
  description = "Region of Vertex AI Pipelines, the bucket and the image repository."
  value       = var.region
}

output "bucket_name" {
  description = "Name of the pipeline-root bucket."
  value       = google_storage_bucket.pipeline_root.name
}

output "pipeline_root" {
  description = "KFP pipeline root for target profiles (gs:// URI)."
  value       = "gs://${google_storage_bucket.pipeline_root.name}/${var.pipeline_root_prefix}"
}

output "registry_uri" {
  description = "kubepipe model registry URI for target profiles (gs:// URI)."
  value       = "gs://${google_storage_bucket.pipeline_root.name}/${var.registry_prefix}"
}

output "image_repository" {
  description = "Docker registry path that `kubepipe image --registry` takes (REGION-docker.pkg.dev/PROJECT/REPO)."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "image_repository_id" {
  description = "Artifact Registry repository id."
  value       = google_artifact_registry_repository.images.repository_id
}

output "runner_service_account_email" {
  description = "Service account pipeline tasks run as."
  value       = google_service_account.runner.email
}

output "runner_service_account_name" {
  description = "Full resource name of the runner service account (for IAM bindings such as Workload Identity)."
  value       = google_service_account.runner.name
}

output "deployer_service_account_email" {
  description = "Service account CI/CD impersonates to push images and submit pipelines."
  value       = google_service_account.deployer.email
}

output "workload_identity_provider" {
  description = "Full name of the GitHub OIDC provider for google-github-actions/auth, or null when github_repository is unset."
  value       = var.github_repository == null ? null : google_iam_workload_identity_pool_provider.github[0].name
}

output "network" {
  description = "VPC network peered with Vertex AI, or null."
  value       = var.network
}

output "experiment" {
  description = "Vertex AI experiment name for the profile."
  value       = var.experiment
}
