variable "project_id" {
  type        = string
  description = "Google Cloud project of the cluster."
}

variable "region" {
  type        = string
  description = "Region of the VPC subnet and Cloud NAT."
}

variable "location" {
  type        = string
  description = "Cluster location: a region for a regional (HA) control plane, or a zone for a cheaper zonal one."
}

variable "cluster_name" {
  type        = string
  description = "Name of the GKE cluster (also the prefix of its network resources)."
  default     = "kubepipe"
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the cluster and its nodes."
  default     = {}
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse terraform destroy of the cluster. Keep true in prod."
  default     = true
}

variable "release_channel" {
  type        = string
  description = "GKE release channel: RAPID, REGULAR or STABLE."
  default     = "REGULAR"

  validation {
    condition     = contains(["RAPID", "REGULAR", "STABLE"], var.release_channel)
    error_message = "release_channel must be RAPID, REGULAR or STABLE."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "Primary IPv4 range of the node subnet."
  default     = "10.10.0.0/20"
}

variable "pods_cidr" {
  type        = string
  description = "Secondary range for pods."
  default     = "10.20.0.0/14"
}

variable "services_cidr" {
  type        = string
  description = "Secondary range for services."
  default     = "10.24.0.0/20"
}

variable "master_ipv4_cidr_block" {
  type        = string
  description = "/28 range of the private control-plane endpoint."
  default     = "172.16.0.0/28"
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "CIDR blocks allowed to reach the control plane (office VPN, CI runners, bastion). Include where terraform runs: it installs KFP and KServe through the control plane. Empty allows only the VPC."
  default     = []
}

variable "enable_private_endpoint" {
  type        = bool
  description = "Expose the control plane on its private IP only (then kubectl and terraform must run from inside the VPC or a peered network)."
  default     = false
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key for application-layer Secrets encryption and node boot disks; null uses Google-managed keys."
  default     = null
}

variable "cpu_machine_type" {
  type        = string
  description = "Machine type of the CPU node pool (KFP system pods, CPU steps, KServe)."
  default     = "e2-standard-8"
}

variable "cpu_min_nodes" {
  type        = number
  description = "Minimum nodes per zone in the CPU pool."
  default     = 1
}

variable "cpu_max_nodes" {
  type        = number
  description = "Maximum nodes per zone in the CPU pool."
  default     = 5
}

variable "gpu_machine_type" {
  type        = string
  description = "Machine type of the GPU node pool; must fit the accelerator (g2-standard-* for nvidia-l4, n1-standard-* for nvidia-tesla-t4, a3-* for nvidia-h100-80gb)."
  default     = "g2-standard-8"
}

variable "gpu_accelerator_type" {
  type        = string
  description = "GKE accelerator type of the GPU pool (nvidia-l4, nvidia-tesla-t4, nvidia-h100-80gb, ...). Nodes carry it as cloud.google.com/gke-accelerator, which kubepipe's node selector matches."
  default     = "nvidia-l4"
}

variable "gpu_accelerator_count" {
  type        = number
  description = "GPUs per GPU node."
  default     = 1
}

variable "gpu_max_nodes" {
  type        = number
  description = "Maximum nodes per zone in the GPU pool; the pool scales from 0."
  default     = 2
}

variable "gpu_node_locations" {
  type        = list(string)
  description = "Zones of the GPU pool (GPU types are not in every zone); empty uses the cluster's zones."
  default     = []
}

variable "gpu_spot" {
  type        = bool
  description = "Use Spot VMs for GPU nodes (cheaper, may be preempted; kubepipe training resumes from checkpoints)."
  default     = false
}

variable "gpu_driver_version" {
  type        = string
  description = "GPU driver GKE installs: DEFAULT or LATEST."
  default     = "DEFAULT"

  validation {
    condition     = contains(["DEFAULT", "LATEST"], var.gpu_driver_version)
    error_message = "gpu_driver_version must be DEFAULT or LATEST."
  }
}

variable "kfp_version" {
  type        = string
  description = "Kubeflow Pipelines release (git tag of kubeflow/pipelines) whose standalone manifests are installed; keep it compatible with the kfp SDK kubepipe pins."
  default     = "2.17.3"
}

variable "kserve_version" {
  type        = string
  description = "KServe Helm chart version (e.g. v0.21.0), matching the kserve Python package kubepipe pins."
  default     = "v0.21.0"
}

variable "kserve_chart_repository" {
  type        = string
  description = "OCI repository of the KServe Helm charts."
  default     = "oci://ghcr.io/kserve/charts"
}

variable "kserve_deployment_mode" {
  type        = string
  description = "KServe deployment mode, in profile terms: raw (RawDeployment, no Knative needed) or serverless (Knative; needed for canary traffic splitting, install Knative Serving separately)."
  default     = "raw"

  validation {
    condition     = contains(["raw", "serverless"], var.kserve_deployment_mode)
    error_message = "kserve_deployment_mode must be raw or serverless (the values of a profile's deployment_mode)."
  }
}

variable "kserve_extra_values" {
  type        = map(string)
  description = "Extra Helm values for the kserve chart (name -> value), e.g. ingress or resource defaults."
  default     = {}
}

variable "cert_manager_version" {
  type        = string
  description = "cert-manager Helm chart version (KServe webhooks need it)."
  default     = "v1.17.2"
}

variable "namespace" {
  type        = string
  description = "Namespace where kubepipe deploys InferenceServices (the profile's deploy_namespace)."
  default     = "kubepipe-serving"
}

variable "kubernetes_service_account" {
  type        = string
  description = "Kubernetes service account in var.namespace bound to the Google service account through Workload Identity."
  default     = "kubepipe-runner"
}

variable "workload_service_account_email" {
  type        = string
  description = "Google service account that pipeline and serving pods act as (the runner from the vertex-pipelines module)."
}

variable "deployer_service_account_email" {
  type        = string
  description = "Google service account of CI/CD; it gets cluster-viewer plus in-cluster rights to reach the KFP API only. Null grants nothing."
  default     = null
}

variable "image_repository" {
  type = object({
    location   = string
    repository = string
  })
  description = "Artifact Registry repository the nodes pull kubepipe runtime images from (reader is granted on it alone); null grants reader on the project."
  default     = null
}

variable "kfp_host" {
  type        = string
  description = "KFP API address written into the rendered profile; the default is a port-forward of svc/ml-pipeline (kubectl -n kubeflow port-forward svc/ml-pipeline 8888:8888)."
  default     = "http://127.0.0.1:8888"
}

variable "default_task_cpu" {
  type        = string
  description = "CPU request and limit of a KFP task container whose step sets no resources (LimitRange default)."
  default     = "1"

  # kubepipe.resources.CPU_RE, above 0 (a test keeps the two in step)
  validation {
    condition = alltrue([
      can(regex("^\\d+(\\.\\d+)?m?$", var.default_task_cpu)),
      can(regex("[1-9]", var.default_task_cpu)),
    ])
    error_message = "default_task_cpu must be a CPU amount above 0 like 1, 0.5 or 500m."
  }
}

variable "default_task_memory" {
  type        = string
  description = "Memory request and limit of a KFP task container whose step sets no resources (LimitRange default)."
  default     = "2Gi"

  # kubepipe.resources.MEMORY_RE, above 0: with its unit, as "2048" would be 2048 bytes
  validation {
    condition = alltrue([
      can(regex("^\\d+(\\.\\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)$", var.default_task_memory)),
      can(regex("[1-9]", var.default_task_memory)),
    ])
    error_message = "default_task_memory must be above 0 with its unit, like 2Gi or 512Mi (2048 is bytes)."
  }
}
