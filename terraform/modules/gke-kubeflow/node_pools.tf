# A CPU pool for system pods and CPU steps, and a GPU pool that scales from 0:
# tainted so that only pods tolerating nvidia.com/gpu (kubepipe GPU steps) land on it.

resource "google_container_node_pool" "cpu" {
  project  = var.project_id
  name     = "cpu"
  location = var.location
  cluster  = google_container_cluster.this.name

  autoscaling {
    min_node_count = var.cpu_min_nodes
    max_node_count = var.cpu_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type      = var.cpu_machine_type
    image_type        = "COS_CONTAINERD"
    disk_type         = "pd-balanced"
    disk_size_gb      = 100
    boot_disk_kms_key = var.kms_key_name
    service_account   = google_service_account.nodes.email
    oauth_scopes      = local.node_oauth
    metadata          = local.node_metadata
    labels            = merge(local.labels, { "kubepipe.dev/pool" = "cpu" })
    resource_labels   = local.labels
    tags              = [local.node_tag]

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}

resource "google_container_node_pool" "gpu" {
  project            = var.project_id
  name               = "gpu-${var.gpu_accelerator_type}"
  location           = var.location
  cluster            = google_container_cluster.this.name
  node_locations     = local.gpu_locations
  initial_node_count = 0

  autoscaling {
    min_node_count = 0
    max_node_count = var.gpu_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  upgrade_settings {
    max_surge       = 1
    max_unavailable = 0
  }

  node_config {
    machine_type      = var.gpu_machine_type
    image_type        = "COS_CONTAINERD"
    disk_type         = "pd-balanced"
    disk_size_gb      = 200
    boot_disk_kms_key = var.kms_key_name
    spot              = var.gpu_spot
    service_account   = google_service_account.nodes.email
    oauth_scopes      = local.node_oauth
    metadata          = local.node_metadata
    labels            = merge(local.labels, { "kubepipe.dev/pool" = "gpu" })
    resource_labels   = local.labels
    tags              = [local.node_tag]

    guest_accelerator {
      type  = var.gpu_accelerator_type
      count = var.gpu_accelerator_count

      gpu_driver_installation_config {
        gpu_driver_version = var.gpu_driver_version
      }
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }
}
