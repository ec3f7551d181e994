# In-cluster identity and rights: the kubepipe namespace, its Workload Identity
# service account, and the narrow RBAC that lets pipeline tasks roll out
# InferenceServices there and CI reach the KFP API.

resource "kubernetes_namespace_v1" "kubepipe" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/managed-by"       = "terraform"
      "pod-security.kubernetes.io/enforce" = "restricted"
    }
  }

  depends_on = [google_container_node_pool.cpu]
}

resource "kubernetes_service_account_v1" "runner" {
  metadata {
    name      = var.kubernetes_service_account
    namespace = kubernetes_namespace_v1.kubepipe.metadata[0].name
    annotations = {
      "iam.gke.io/gcp-service-account" = var.workload_service_account_email
    }
  }
  automount_service_account_token = false
}

# KFP creates kubeflow/pipeline-runner; annotate it so task pods get the runner's Google identity.
resource "kubernetes_annotations" "pipeline_runner" {
  api_version = "v1"
  kind        = "ServiceAccount"
  metadata {
    name      = "pipeline-runner"
    namespace = "kubeflow"
  }
  annotations = {
    "iam.gke.io/gcp-service-account" = var.workload_service_account_email
  }
  force = true

  depends_on = [kustomization_resource.kfp_namespaced]
}

resource "kubernetes_role_v1" "deploy_inference" {
  metadata {
    name      = "kubepipe-deploy"
    namespace = kubernetes_namespace_v1.kubepipe.metadata[0].name
  }

  rule {
    api_groups = ["serving.kserve.io"]
    resources  = ["inferenceservices"]
    verbs      = ["get", "list", "watch", "create", "update", "patch", "delete"]
  }

  rule {
    api_groups = ["serving.kserve.io"]
    resources  = ["inferenceservices/status"]
    verbs      = ["get"]
  }

  # A KServe rollout with no registry and no canary split records that it was judged in a Lease beside its
  # InferenceService (kubepipe-judged-NAME; components/deploy/judged_record.py), so the next run's deploy need not
  # wait for its lease to lapse. Without this rule a deploy warns and the lease holds until it lapses.
  rule {
    api_groups = ["coordination.k8s.io"]
    resources  = ["leases"]
    verbs      = ["get", "create", "update"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods", "events"]
    verbs      = ["get", "list", "watch"]
  }
}

resource "kubernetes_role_binding_v1" "deploy_inference" {
  metadata {
    name      = "kubepipe-deploy"
    namespace = kubernetes_namespace_v1.kubepipe.metadata[0].name
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.deploy_inference.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = "pipeline-runner"
    namespace = "kubeflow"
  }
}

# The deploy step checks each InferenceService against the CRD installed in the cluster before it applies
# it (components/deploy/crd.py): `get` on that one CustomResourceDefinition, a cluster-scoped object.
resource "kubernetes_cluster_role_v1" "read_inference_crd" {
  metadata {
    name = "kubepipe-read-inferenceservice-crd"
  }

  rule {
    api_groups     = ["apiextensions.k8s.io"]
    resources      = ["customresourcedefinitions"]
    resource_names = ["inferenceservices.serving.kserve.io"]
    verbs          = ["get"]
  }
}

resource "kubernetes_cluster_role_binding_v1" "read_inference_crd" {
  metadata {
    name = "kubepipe-read-inferenceservice-crd"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "ClusterRole"
    name      = kubernetes_cluster_role_v1.read_inference_crd.metadata[0].name
  }
  subject {
    kind      = "ServiceAccount"
    name      = "pipeline-runner"
    namespace = "kubeflow"
  }
}

resource "kubernetes_role_v1" "kfp_api_access" {
  count = var.deployer_service_account_email == null ? 0 : 1

  metadata {
    name      = "kubepipe-kfp-api"
    namespace = "kubeflow"
  }

  rule {
    api_groups     = [""]
    resources      = ["services/proxy"]
    resource_names = ["ml-pipeline", "ml-pipeline:8888"]
    verbs          = ["get", "create"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods/portforward"]
    verbs      = ["create"]
  }

  rule {
    api_groups = [""]
    resources  = ["pods", "services"]
    verbs      = ["get", "list"]
  }

  depends_on = [kustomization_resource.kfp_namespaced]
}

resource "kubernetes_role_binding_v1" "kfp_api_access" {
  count = var.deployer_service_account_email == null ? 0 : 1

  metadata {
    name      = "kubepipe-kfp-api"
    namespace = "kubeflow"
  }
  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.kfp_api_access[0].metadata[0].name
  }
  # GKE maps a Google identity to a Kubernetes user named by its email.
  subject {
    api_group = "rbac.authorization.k8s.io"
    kind      = "User"
    name      = var.deployer_service_account_email
  }
}

# Steps that set no `resources:` still get requests and limits, so one task
# cannot starve the node (kubeflow namespace: where KFP runs task pods).
resource "kubernetes_limit_range_v1" "kfp_task_defaults" {
  metadata {
    name      = "kubepipe-task-defaults"
    namespace = "kubeflow"
  }

  spec {
    limit {
      type = "Container"
      default = {
        cpu    = var.default_task_cpu
        memory = var.default_task_memory
      }
      default_request = {
        cpu    = var.default_task_cpu
        memory = var.default_task_memory
      }
    }
  }

  depends_on = [kustomization_resource.kfp_namespaced]
}

# Serving namespace: deny all ingress, then let the model servers' HTTP port in
# (8080 the server itself; 8012 Knative's queue-proxy in serverless mode), and Prometheus
# scrape the queue-proxy's request metrics (9091), which the deploy step's canary_analysis reads.
resource "kubernetes_network_policy_v1" "serving_default_deny" {
  metadata {
    name      = "default-deny-ingress"
    namespace = kubernetes_namespace_v1.kubepipe.metadata[0].name
  }

  spec {
    pod_selector {}
    policy_types = ["Ingress"]
  }
}

resource "kubernetes_network_policy_v1" "serving_http" {
  metadata {
    name      = "allow-model-http"
    namespace = kubernetes_namespace_v1.kubepipe.metadata[0].name
  }

  spec {
    pod_selector {
      match_expressions {
        key      = "serving.kserve.io/inferenceservice"
        operator = "Exists"
      }
    }
    policy_types = ["Ingress"]

    ingress {
      ports {
        port     = "8080"
        protocol = "TCP"
      }
      ports {
        port     = "8012"
        protocol = "TCP"
      }
      ports {
        port     = "9091"
        protocol = "TCP"
      }
      from {
        namespace_selector {}
      }
    }
  }
}
