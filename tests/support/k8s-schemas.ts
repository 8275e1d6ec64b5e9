/**
 * The Kubernetes JSON schemas of every kind deploy/k8s renders, offline: the models of
 * `kubernetes-models` (the API's OpenAPI schemas compiled to validators) and of
 * `@kubernetes-models/prometheus-operator` (the CRDs' schemas). A kind missing here
 * is an error, so a new kind in the manifests cannot go unvalidated.
 */
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import { objectName, type K8sObject } from './kustomize.js';

interface ModelClass {
  readonly apiVersion: string;
  readonly kind: string;
  new (): { validate(): void };
}

export interface Schema {
  /** Validates against the JSON schema; throws with every violation. */
  validate(object: K8sObject): void;
  /** Where the TypeScript type of the kind is, and its name (for k8s-unknown-fields.ts). */
  typeModule: string;
  typeName: string;
}

function schema(model: ModelClass, typeModule: string): [string, Schema] {
  return [
    `${model.apiVersion} ${model.kind}`,
    {
      // What the model's constructor does with its argument: copy the fields onto it.
      validate: (object) => Object.assign(new model(), object).validate(),
      typeModule,
      typeName: `I${model.kind}`,
    },
  ];
}

const SCHEMAS = new Map<string, Schema>([
  schema(ConfigMap, 'kubernetes-models/v1/ConfigMap'),
  schema(Service, 'kubernetes-models/v1/Service'),
  schema(Deployment, 'kubernetes-models/apps/v1/Deployment'),
  schema(HorizontalPodAutoscaler, 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler'),
  schema(PodDisruptionBudget, 'kubernetes-models/policy/v1/PodDisruptionBudget'),
  schema(Ingress, 'kubernetes-models/networking.k8s.io/v1/Ingress'),
  schema(NetworkPolicy, 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'),
  schema(ServiceMonitor, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'),
  schema(PrometheusRule, '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule'),
]);

export function schemaOf(object: K8sObject): Schema {
  const found = SCHEMAS.get(`${object.apiVersion} ${object.kind}`);
  if (found === undefined) throw new Error(`${objectName(object)}: no schema for ${object.apiVersion} ${object.kind} (add its model to tests/support/k8s-schemas.ts)`);
  return found;
}
