# A dedicated VPC: private nodes reach the internet (chart and image pulls)
# through Cloud NAT only, and Google APIs through Private Google Access.

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = "${var.cluster_name}-vpc"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"

  depends_on = [google_project_service.gke]
}

resource "google_compute_subnetwork" "nodes" {
  project                  = var.project_id
  name                     = "${var.cluster_name}-nodes"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true

  secondary_ip_range {
    range_name    = "pods"
    ip_cidr_range = var.pods_cidr
  }

  secondary_ip_range {
    range_name    = "services"
    ip_cidr_range = var.services_cidr
  }

  log_config {
    aggregation_interval = "INTERVAL_5_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_router" "this" {
  project = var.project_id
  name    = "${var.cluster_name}-router"
  region  = var.region
  network = google_compute_network.this.id
}

resource "google_compute_router_nat" "this" {
  project                            = var.project_id
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.this.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"

  log_config {
    enable = true
    filter = "ERRORS_ONLY"
  }
}

# GKE opens 443 and 10250 from the private control plane to nodes. Admission
# webhooks of KFP (8443) and KServe (9443) need their ports too, or creating a
# pipeline run or an InferenceService times out.
resource "google_compute_firewall" "control_plane_webhooks" {
  project     = var.project_id
  name        = "${var.cluster_name}-control-plane-webhooks"
  network     = google_compute_network.this.id
  direction   = "INGRESS"
  priority    = 1000
  description = "Control plane to admission webhooks of KFP and KServe."

  source_ranges = [var.master_ipv4_cidr_block]
  target_tags   = [local.node_tag]

  allow {
    protocol = "tcp"
    ports    = ["8443", "9443"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}
