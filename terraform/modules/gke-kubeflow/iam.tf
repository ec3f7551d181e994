# Node identity with only what nodes need (logs, metrics, image pulls), and
# Workload Identity bindings so pods act as the runner, never as the node.

resource "google_service_account" "nodes" {
  project      = var.project_id
  account_id   = "${var.cluster_name}-nodes"
  display_name = "kubepipe GKE nodes"
  description  = "Minimal node identity of the kubepipe cluster (logging, monitoring, image pulls)."

  depends_on = [google_project_service.gke]
}

resource "google_project_iam_member" "nodes" {
  for_each = toset([
    "roles/logging.logWriter",
    "roles/monitoring.metricWriter",
    "roles/monitoring.viewer",
    "roles/stackdriver.resourceMetadata.writer",
    "roles/autoscaling.metricsWriter",
  ])

  project = var.project_id
  role    = each.value
  member  = local.node_sa_member
}

resource "google_artifact_registry_repository_iam_member" "nodes_pull" {
  count = var.image_repository == null ? 0 : 1

  project    = var.project_id
  location   = var.image_repository.location
  repository = var.image_repository.repository
  role       = "roles/artifactregistry.reader"
  member     = local.node_sa_member
}

resource "google_project_iam_member" "nodes_pull_project" {
  count = var.image_repository == null ? 1 : 0

  project = var.project_id
  role    = "roles/artifactregistry.reader"
  member  = local.node_sa_member
}

locals {
  workload_sa_id = "projects/${var.project_id}/serviceAccounts/${var.workload_service_account_email}"
  # KFP task pods run as kubeflow/pipeline-runner; kubepipe serving pods as <namespace>/<ksa>.
  workload_identity_members = toset([
    "serviceAccount:${local.workload_pool}[kubeflow/pipeline-runner]",
    "serviceAccount:${local.workload_pool}[${var.namespace}/${var.kubernetes_service_account}]",
  ])
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each = local.workload_identity_members

  service_account_id = local.workload_sa_id
  role               = "roles/iam.workloadIdentityUser"
  member             = each.value

  depends_on = [google_container_cluster.this]
}

# CI/CD: fetch cluster credentials; what it may do inside is limited by RBAC (kubernetes.tf).
resource "google_project_iam_member" "deployer_cluster_viewer" {
  count = var.deployer_service_account_email == null ? 0 : 1

  project = var.project_id
  role    = "roles/container.clusterViewer"
  member  = "serviceAccount:${var.deployer_service_account_email}"
}
