variable "project_id" {
  type        = string
  description = "Google Cloud project of the dev environment."
}

variable "region" {
  type        = string
  description = "Region of Vertex AI Pipelines, the bucket, the image repository and the VPC."
  default     = "europe-west4"
}

variable "zone" {
  type        = string
  description = "Zone of the (zonal, cheaper) dev cluster; pick one that offers the GPU type."
  default     = "europe-west4-a"
}

variable "labels" {
  type        = map(string)
  description = "Extra labels for every resource."
  default     = {}
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) whose main-branch workflows may deploy; null creates no federation."
  default     = null
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "CIDR blocks allowed to reach the cluster control plane (your VPN / bastion / CI egress)."
  default     = []
}

variable "gpu_accelerator_type" {
  type        = string
  description = "GKE accelerator type of the GPU pool."
  default     = "nvidia-l4"
}

variable "gpu_machine_type" {
  type        = string
  description = "Machine type that carries the GPU."
  default     = "g2-standard-8"
}

variable "gpu_types" {
  type = map(object({
    vertex = string # the Vertex AI accelerator type, e.g. NVIDIA_RTX_PRO_6000
    gke    = string # the GKE node label cloud.google.com/gke-accelerator, e.g. nvidia-rtx-pro-6000
  }))
  description = "Extra GPU type names (resources.gpu.type) -> {vertex, gke}: what each target's profile calls them."
  default     = {}
}

variable "image_tag" {
  type        = string
  description = "Runtime image tag written to the profiles until a digest is known (tags are immutable in the repository)."
  default     = "0.1.0"
}

variable "runtime_image_digest" {
  type        = string
  description = "Digest (sha256:...) of the pushed runtime image; when set the profiles pin the image by digest."
  default     = null

  validation {
    condition     = var.runtime_image_digest == null || can(regex("^sha256:[0-9a-f]{64}$", var.runtime_image_digest))
    error_message = "runtime_image_digest must look like sha256:<64 hex characters>."
  }
}

variable "kfp_host" {
  type        = string
  description = "KFP API address for the kubeflow profile (a port-forward, an internal load balancer or IAP URL)."
  default     = "http://127.0.0.1:8888"
}
