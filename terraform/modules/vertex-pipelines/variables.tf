variable "project_id" {
  type        = string
  description = "Google Cloud project that holds the pipeline root, the image repository and the service accounts."
}

variable "region" {
  type        = string
  description = "Region of Vertex AI Pipelines, the bucket and the Artifact Registry repository (e.g. europe-west4)."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name (bucket, repository, service accounts). Lower-case letters, digits and dashes."
  default     = "kubepipe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters of lower-case letters, digits and dashes, starting with a letter."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on every resource that takes labels."
  default     = {}
}

variable "bucket_name" {
  type        = string
  description = "Name of the pipeline-root bucket; null derives <project_id>-<name_prefix>-pipelines."
  default     = null
}

variable "pipeline_root_prefix" {
  type        = string
  description = "Folder in the bucket that KFP writes run artifacts under; the profile's pipeline_root is gs://<bucket>/<this>."
  default     = "pipeline-root"
}

variable "registry_prefix" {
  type        = string
  description = "Folder in the bucket that holds the kubepipe model registry; the profile's registry_uri is gs://<bucket>/<this>."
  default     = "registry"
}

variable "run_artifact_retention_days" {
  type        = number
  description = "Days after which objects under pipeline_root_prefix are deleted (0 keeps them forever). The model registry is never expired."
  default     = 180

  validation {
    condition     = var.run_artifact_retention_days >= 0
    error_message = "run_artifact_retention_days must be 0 (keep forever) or a positive number of days."
  }
}

variable "noncurrent_version_retention_days" {
  type        = number
  description = "Days a replaced or deleted object version is kept before it is removed (versioning protects against overwrites)."
  default     = 30
}

variable "nearline_after_days" {
  type        = number
  description = "Days after which objects move to the NEARLINE storage class to cut cost."
  default     = 60
}

variable "force_destroy" {
  type        = bool
  description = "Allow terraform destroy to delete a non-empty bucket. Keep false outside throw-away environments."
  default     = false
}

variable "kms_key_name" {
  type        = string
  description = "Optional Cloud KMS key (projects/.../cryptoKeys/...) used as CMEK for the bucket and the image repository; null uses Google-managed keys."
  default     = null
}

variable "image_repository_id" {
  type        = string
  description = "Artifact Registry repository id for the kubepipe runtime images."
  default     = "kubepipe"
}

variable "untagged_image_retention_days" {
  type        = number
  description = "Days after which untagged image versions are removed by the repository cleanup policy."
  default     = 14
}

variable "keep_recent_image_versions" {
  type        = number
  description = "Number of most recent image versions the cleanup policy always keeps."
  default     = 20
}

variable "github_repository" {
  type        = string
  description = "GitHub repository (owner/name) allowed to act as the deployer through Workload Identity Federation; null creates no federation."
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must look like owner/name."
  }
}

variable "github_ref" {
  type        = string
  description = "Git ref whose workflows may impersonate the deployer (pull requests get no cloud credentials)."
  default     = "refs/heads/main"
}

variable "network" {
  type        = string
  description = "Optional VPC network (projects/<number>/global/networks/<name>) peered with Vertex AI for private pipeline jobs; null runs without peering."
  default     = null
}

variable "experiment" {
  type        = string
  description = "Vertex AI experiment name the rendered profile uses."
  default     = "kubepipe"
}
