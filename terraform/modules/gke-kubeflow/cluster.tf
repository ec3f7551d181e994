# Private GKE cluster: private nodes, authorized control-plane networks,
# Workload Identity, Dataplane V2 (network policy), shielded nodes, no legacy
# metadata or client certificates.

locals {
  node_tag        = "${var.cluster_name}-node"
  labels          = merge({ managed-by = "terraform", app = "kubepipe" }, var.labels)
  workload_pool   = "${var.project_id}.svc.id.goog"
  node_sa_member  = "serviceAccount:${google_service_account.nodes.email}"
  node_oauth      = ["https://www.googleapis.com/auth/cloud-platform"]
  node_metadata   = { disable-legacy-endpoints = "true" }
  gpu_locations   = length(var.gpu_node_locations) > 0 ? var.gpu_node_locations : null
  secrets_at_rest = var.kms_key_name == null ? "DECRYPTED" : "ENCRYPTED"
}

resource "google_project_service" "gke" {
  for_each = toset(["compute.googleapis.com", "container.googleapis.com", "iam.googleapis.com"])

  project = var.project_id
  service = each.value
  # Other stacks in the project may use the same APIs.
  disable_on_destroy = false
}

resource "google_container_cluster" "this" {
  #checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Workspace domain group (gke-security-groups@<domain>) that this module cannot assume; RBAC is bound to service accounts instead.
  provider = google

  project  = var.project_id
  name     = var.cluster_name
  location = var.location

  network    = google_compute_network.this.id
  subnetwork = google_compute_subnetwork.nodes.id

  # Node pools are managed below; the default one is removed at creation.
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = var.deletion_protection
  resource_labels          = merge(var.labels, { managed-by = "terraform", app = "kubepipe" })

  networking_mode = "VPC_NATIVE"
  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = var.enable_private_endpoint
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }

  master_authorized_networks_config {
    gcp_public_cidrs_access_enabled = false

    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  release_channel {
    channel = var.release_channel
  }

  workload_identity_config {
    workload_pool = local.workload_pool
  }

  # Dataplane V2 enforces NetworkPolicy natively; the Calico add-on must stay off with it.
  datapath_provider = "ADVANCED_DATAPATH"
  network_policy {
    enabled  = false
    provider = "PROVIDER_UNSPECIFIED"
  }
  enable_intranode_visibility = true
  enable_shielded_nodes       = true
  enable_legacy_abac          = false

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  database_encryption {
    state    = local.secrets_at_rest
    key_name = var.kms_key_name
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  logging_service    = "logging.googleapis.com/kubernetes"
  monitoring_service = "monitoring.googleapis.com/kubernetes"

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS"]
    managed_prometheus {
      enabled = true
    }
  }

  security_posture_config {
    mode               = "BASIC"
    vulnerability_mode = "VULNERABILITY_BASIC"
  }

  addons_config {
    http_load_balancing {
      disabled = false
    }
    gce_persistent_disk_csi_driver_config {
      enabled = true
    }
    gcs_fuse_csi_driver_config {
      enabled = true
    }
  }

  maintenance_policy {
    recurring_window {
      start_time = "2024-01-06T02:00:00Z"
      end_time   = "2024-01-06T08:00:00Z"
      recurrence = "FREQ=WEEKLY;BYDAY=SA,SU"
    }
  }

  # Settings for the short-lived default pool, so it is as locked down as the real ones.
  node_config {
    service_account = google_service_account.nodes.email
    oauth_scopes    = local.node_oauth
    metadata        = local.node_metadata

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    ignore_changes = [node_config, initial_node_count]
  }

  depends_on = [google_project_service.gke, google_project_iam_member.nodes]
}
