/**
 * deploy/k8s, rendered with kustomize and checked offline (no cluster runs here):
 * every object against the Kubernetes JSON schemas, no field the API does not know,
 * and the properties that releases and drains depend on: probes, the preStop pause
 * and the grace period, non-root, memory for the planned sockets, which pods each
 * Service, budget and autoscaler reaches, the Ingress, the scrape job and the alert
 * rules in step with observability/, and the names tools/k8s/k8s-promote.sh uses.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PrometheusRule, ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { Deployment } from 'kubernetes-models/apps/v1';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1';
import type { IHTTPIngressPath } from 'kubernetes-models/networking.k8s.io/v1/HTTPIngressPath';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Service } from 'kubernetes-models/v1';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IService } from 'kubernetes-models/v1/Service';
import { parse } from 'yaml';
import { loadConfig, type Config } from '../../services/gateway/config.js';
import { schemaOf } from '../support/k8s-schemas.js';
import { unknownFieldErrors } from '../support/k8s-unknown-fields.js';
import { kustomizeBuild, objectName, type K8sObject } from '../support/kustomize.js';
import { repoRoot } from '../../tools/harness/repo-root.js';

const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');

const COLOURS = ['blue', 'green'] as const;
type Colour = (typeof COLOURS)[number];
const overlay = (colour: Colour): string => `deploy/k8s/overlays/${colour}`;
const ROUTING = 'deploy/k8s/routing';
const MONITORING = 'deploy/k8s/monitoring';
const NAMESPACE = 'wschat';

/** What the resources are sized for (the comment in deploy/k8s/base/deployment.yaml). */
const SOCKETS_PER_REPLICA = 15_000;
const BYTES_PER_SOCKET = 21 * 1024;
const REPLICA_BASE_BYTES = 80 * 1024 * 1024;
/** The endpoints the native stack serves on its public side. */
const PUBLIC_PATHS = ['/ws/chat/', '/socket.io/', '/version', '/healthz', '/readyz'];

type Guard<T> = (value: unknown) => value is T;
type Labels = Record<string, string>;

const rendered = new Map<string, K8sObject[]>();

function objectsOf(dir: string): K8sObject[] {
  const objects = rendered.get(dir);
  assert.ok(objects, `${dir} was not rendered`);
  return objects;
}

function allOf<T>(dir: string, guard: Guard<T>): T[] {
  const found: T[] = [];
  for (const object of objectsOf(dir)) if (guard(object)) found.push(object);
  return found;
}

function oneOf<T>(dir: string, guard: Guard<T>, what: string): T {
  const found = allOf(dir, guard);
  assert.equal(found.length, 1, `${dir} renders ${found.length} ${what}, expected 1`);
  return found[0]!;
}

function named<T extends { metadata?: { name?: string } }>(objects: T[], name: string): T {
  const found = objects.find((object) => object.metadata?.name === name);
  assert.ok(found, `no object named ${name}`);
  return found;
}

/** A selector selects the labels when each of its pairs is among them (an empty selector selects nothing here). */
function selects(selector: Labels | undefined, labels: Labels | undefined): boolean {
  const pairs = Object.entries(selector ?? {});
  return pairs.length > 0 && pairs.every(([key, value]) => labels?.[key] === value);
}

function deploymentOf(colour: Colour): IDeployment {
  return oneOf(overlay(colour), Deployment.is, 'Deployments');
}

function podLabels(colour: Colour): Labels {
  return deploymentOf(colour).spec?.template.metadata?.labels ?? {};
}

function containerOf(colour: Colour): IContainer {
  const containers = deploymentOf(colour).spec?.template.spec?.containers ?? [];
  assert.equal(containers.length, 1, 'one container per pod');
  return containers[0]!;
}

/** Colours whose pods the selector selects. */
function coloursSelected(selector: Labels | undefined): Colour[] {
  return COLOURS.filter((colour) => selects(selector, podLabels(colour)));
}

/** The variables services/gateway/config.ts reads: read('NAME') and helper(read, 'NAME', ...). */
function configVariables(): string[] {
  return [...read('services/gateway/config.ts').matchAll(/read(?:\(|, )'([A-Z][A-Z0-9_]*)'/g)].map((match) => match[1]!);
}

/** What the documented Secret holds (deploy/k8s/README.md), as an operator would create it. */
const SECRET_VALUES: Record<string, string> = {
  'wschat-secrets/redis-url': 'rediss://wschat:a-long-password@redis:6379',
  'wschat-secrets/session-key-secret': 'f'.repeat(64),
};

/** A pod's environment as the kubelet builds it: the ConfigMap, then `env` (downward API resolved). */
function podEnvironment(colour: Colour): Record<string, string> {
  const deployment = deploymentOf(colour);
  const container = containerOf(colour);
  const configMapNames = (container.envFrom ?? []).map((source) => source.configMapRef?.name);
  const configMap = oneOf(overlay(colour), ConfigMap.is, 'ConfigMaps');
  assert.deepEqual(configMapNames, [configMap.metadata?.name], 'the container takes its environment from the rendered ConfigMap');
  const environment: Record<string, string> = { ...configMap.data };
  for (const variable of container.env ?? []) {
    const fieldPath = variable.valueFrom?.fieldRef?.fieldPath;
    const label = /^metadata\.labels\['([^']+)'\]$/.exec(fieldPath ?? '');
    const secret = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) environment[variable.name] = variable.value;
    else if (secret !== undefined) environment[variable.name] = SECRET_VALUES[`${secret.name}/${secret.key}`] ?? assert.fail(`${variable.name}: unknown secret ${secret.name}/${secret.key}`);
    else if (fieldPath === 'metadata.name') environment[variable.name] = `${deployment.metadata?.name}-7d9f8c6b5-x2x9k`;
    else if (label) environment[variable.name] = podLabels(colour)[label[1]!] ?? '';
    else assert.fail(`${variable.name}: a source this test does not resolve`);
  }
  return environment;
}

function configOf(colour: Colour): Config {
  return loadConfig(podEnvironment(colour));
}

/** Bytes of a Kubernetes quantity such as 768Mi or 1G. */
function bytes(quantity: string | number | undefined): number {
  const match = /^(\d+)(Ki|Mi|Gi|k|M|G)?$/.exec(String(quantity));
  assert.ok(match, `not a memory quantity: ${quantity}`);
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

/** Seconds of the preStop pause: `sleep N` as an exec, or the sleep action. */
function preStopSeconds(container: IContainer): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop?.sleep !== undefined) return preStop.sleep.seconds;
  const command = preStop?.exec?.command?.join(' ') ?? '';
  const match = /(?:^|\s)sleep (\d+)$/.exec(command);
  assert.ok(match, `preStop is not a pause: ${JSON.stringify(preStop)}`);
  return Number(match[1]);
}

/** The container port a probe or Service names (by name or number). */
function containerPort(container: IContainer, port: string | number | undefined): number {
  if (typeof port === 'number') return port;
  const found = container.ports?.find((candidate) => candidate.name === port);
  assert.ok(found, `no container port named ${port}`);
  return found.containerPort;
}

/** Whether an Ingress path sends a request for `target` to its backend (Exact, or Prefix by path elements). */
function routes(rule: IHTTPIngressPath, target: string): boolean {
  const rulePath = rule.path ?? '/';
  if (rule.pathType === 'Exact') return target === rulePath;
  const prefix = rulePath.replace(/\/+$/, '');
  return prefix === '' || target === prefix || target.startsWith(`${prefix}/`);
}

/** readonly NAME=value lines of a shell script, e.g. readonly ACTIVE_SERVICE=wschat-active. */
function scriptConstants(file: string): Map<string, string> {
  return new Map([...read(file).matchAll(/^readonly ([A-Z_]+)=(.+)$/gm)].map((match) => [match[1]!, match[2]!]));
}

describe('Kubernetes manifests (deploy/k8s)', function () {
  // kustomize runs once per kustomization; the type check loads the models' types.
  this.timeout(120_000);

  before(async () => {
    for (const dir of [overlay('blue'), overlay('green'), ROUTING, MONITORING]) {
      rendered.set(dir, await kustomizeBuild(repoRoot, dir));
    }
  });

  const everything = (): K8sObject[] => [...rendered.values()].flat();

  describe('every object', () => {
    it('validates against its Kubernetes schema', () => {
      assert.ok(everything().length >= 11, `rendered ${everything().length} objects`);
      for (const object of everything()) {
        try {
          schemaOf(object).validate(object);
        } catch (error) {
          assert.fail(`${objectName(object)}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    });

    it('has only fields its kind defines', () => {
      const objects = everything().map((object) => ({ name: objectName(object), ...schemaOf(object), value: object }));
      assert.deepEqual(unknownFieldErrors(repoRoot, objects), []);
    });

    it(`lives in namespace ${NAMESPACE}`, () => {
      for (const object of everything()) assert.equal(object.metadata.namespace, NAMESPACE, objectName(object));
    });
  });

  describe('Redis', () => {
    it('lets only the replicas reach Redis, on its port', () => {
      const policies = [...rendered.get(ROUTING)!].filter((object) => object.kind === 'NetworkPolicy') as unknown as INetworkPolicy[];
      assert.equal(policies.length, 1);
      const policy = policies[0]!;
      assert.deepEqual(policy.spec?.policyTypes, ['Ingress']);
      const from = policy.spec?.ingress?.flatMap((rule) => rule.from ?? []) ?? [];
      assert.deepEqual(from, [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'wschat' } } }], 'only pods labelled as the replicas');
      for (const colour of COLOURS) assert.equal(podLabels(colour)['app.kubernetes.io/name'], 'wschat', `${colour}'s pods carry that label`);
      assert.deepEqual(policy.spec?.ingress?.[0]?.ports, [{ protocol: 'TCP', port: 6379 }]);
    });

    it('takes the Redis URL and the session-key secret from a Secret, never the ConfigMap', () => {
      for (const colour of COLOURS) {
        const configMap = oneOf(overlay(colour), ConfigMap.is, 'ConfigMaps');
        for (const name of ['REDIS_URL', 'SESSION_KEY_SECRET']) {
          assert.ok(!(name in (configMap.data ?? {})), `${name} in the ConfigMap`);
          const variable = (containerOf(colour).env ?? []).find((entry) => entry.name === name);
          assert.equal(variable?.valueFrom?.secretKeyRef?.name, 'wschat-secrets', name);
        }
      }
    });
  });

  for (const colour of COLOURS) {
    describe(`overlays/${colour}`, () => {
      it(`runs wschat-${colour}: the colour on its pods and in its selector, /version answering ${colour}`, () => {
        const deployment = deploymentOf(colour);
        assert.equal(deployment.metadata?.name, `wschat-${colour}`);
        assert.equal(podLabels(colour).colour, colour);
        assert.ok(selects(deployment.spec?.selector.matchLabels, podLabels(colour)), 'the selector selects its own pods');
        assert.deepEqual(coloursSelected(deployment.spec?.selector.matchLabels), [colour], 'and only them');
        assert.equal(configOf(colour).colour, colour, 'APP_VERSION');
        assert.match(configOf(colour).replicaId, new RegExp(`^wschat-${colour}-`), 'REPLICA_ID is the pod name');
      });

      it('sets every variable of services/gateway/config.ts, and loadConfig accepts the pod environment', () => {
        const variables = configVariables();
        assert.ok(variables.length >= 14, `found ${variables.length} variables in services/gateway/config.ts`);
        const environment = podEnvironment(colour);
        const configMap = oneOf(overlay(colour), ConfigMap.is, 'ConfigMaps');
        for (const key of Object.keys(configMap.data ?? {})) assert.ok(variables.includes(key), `ConfigMap key ${key} is not read by services/gateway/config.ts`);
        for (const variable of variables) assert.ok(variable in environment, `${variable} is set neither by the ConfigMap nor by the container`);
        assert.doesNotThrow(() => configOf(colour));
      });

      it('probes /readyz for readiness and /healthz for liveness, on the port the replica listens on', () => {
        const container = containerOf(colour);
        const { readinessProbe, livenessProbe } = container;
        assert.equal(readinessProbe?.httpGet?.path, '/readyz');
        assert.equal(livenessProbe?.httpGet?.path, '/healthz');
        const port = configOf(colour).port;
        assert.equal(containerPort(container, readinessProbe?.httpGet?.port), port);
        assert.equal(containerPort(container, livenessProbe?.httpGet?.port), port);
        const annotations = deploymentOf(colour).spec?.template.metadata?.annotations ?? {};
        assert.equal(annotations['prometheus.io/port'], String(port), 'the scrape annotation names that port');
      });

      it('pauses in preStop, and grants more than the pause + SHUTDOWN_TIMEOUT_MS before SIGKILL', () => {
        const pause = preStopSeconds(containerOf(colour));
        assert.ok(pause >= 3, `a preStop pause of ${pause} s leaves the endpoints too little time to update`);
        const grace = deploymentOf(colour).spec?.template.spec?.terminationGracePeriodSeconds;
        assert.ok(grace !== undefined, 'terminationGracePeriodSeconds is set');
        const drainMs = configOf(colour).shutdownTimeoutMs;
        assert.ok(grace * 1000 > pause * 1000 + drainMs, `grace ${grace} s <= preStop ${pause} s + drain ${drainMs} ms`);
      });

      it('runs as non-root with a read-only root filesystem and no privileges', () => {
        const pod = deploymentOf(colour).spec?.template.spec;
        assert.equal(pod?.securityContext?.runAsNonRoot, true);
        assert.ok((pod?.securityContext?.runAsUser ?? 0) > 0, 'a numeric non-root uid (the image names its user)');
        assert.equal(pod?.automountServiceAccountToken, false);
        const security = containerOf(colour).securityContext;
        assert.equal(security?.readOnlyRootFilesystem, true);
        assert.equal(security?.allowPrivilegeEscalation, false);
        assert.ok(security?.capabilities?.drop?.includes('ALL'), 'drops every capability');
      });

      it(`has memory for ${SOCKETS_PER_REPLICA} sockets, not overcommitted, with the JS heap below the limit`, () => {
        const container = containerOf(colour);
        const limit = bytes(container.resources?.limits?.memory);
        const need = SOCKETS_PER_REPLICA * BYTES_PER_SOCKET + REPLICA_BASE_BYTES;
        assert.ok(limit >= need, `memory limit ${limit} < ${need}`);
        assert.equal(bytes(container.resources?.requests?.memory), limit, 'request = limit');
        assert.ok(container.resources?.requests?.cpu !== undefined, 'a CPU request (the HPA measures utilisation against it)');
        const heap = /--max-old-space-size=(\d+)/.exec(podEnvironment(colour).NODE_OPTIONS ?? '');
        assert.ok(heap, 'NODE_OPTIONS bounds the heap');
        assert.ok(Number(heap[1]) * 1024 ** 2 < limit, 'the heap bound is below the memory limit');
      });

      it('leaves the replica count to the HPA and the promotion, and pins an image tag', () => {
        const deployment = deploymentOf(colour);
        assert.equal(deployment.spec?.replicas, undefined, 'spec.replicas would be reset by every apply');
        assert.match(containerOf(colour).image ?? '', /(?:^|\/)wschat:(?!latest$)\w[\w.-]*$/);
      });

      it('autoscales this Deployment, from 2 replicas, and scales down slowly', () => {
        const hpa = oneOf(overlay(colour), HorizontalPodAutoscaler.is, 'HorizontalPodAutoscalers');
        assert.deepEqual(hpa.spec?.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: `wschat-${colour}` });
        assert.ok((hpa.spec?.minReplicas ?? 1) >= 2, 'minReplicas >= 2, so the PodDisruptionBudget leaves one');
        assert.ok(hpa.spec?.metrics?.some((metric) => metric.resource?.name === 'cpu'), 'scales on CPU');
        const window = hpa.spec?.behavior?.scaleDown?.stabilizationWindowSeconds ?? 300;
        assert.ok(window >= 300, `a scale-down window of ${window} s could shrink a colour before its flip`);
      });

      it('budgets disruptions for this colour only', () => {
        const budget = oneOf(overlay(colour), PodDisruptionBudget.is, 'PodDisruptionBudgets');
        assert.deepEqual(coloursSelected(budget.spec?.selector?.matchLabels), [colour]);
        assert.ok(budget.spec?.maxUnavailable !== undefined || budget.spec?.minAvailable !== undefined);
      });
    });
  }

  describe('routing', () => {
    const services = (): IService[] => allOf(ROUTING, Service.is);

    it('wschat-active and wschat-preview each select the pods of exactly one colour, not the same', () => {
      const active = coloursSelected(named(services(), 'wschat-active').spec?.selector);
      const preview = coloursSelected(named(services(), 'wschat-preview').spec?.selector);
      assert.equal(active.length, 1, `wschat-active selects ${active.join(', ') || 'no colour'}`);
      assert.equal(preview.length, 1, `wschat-preview selects ${preview.join(', ') || 'no colour'}`);
      assert.notEqual(active[0], preview[0]);
    });

    it("sends each Service's port to the replica's port", () => {
      for (const service of services()) {
        for (const port of service.spec?.ports ?? []) {
          for (const colour of COLOURS) {
            assert.equal(containerPort(containerOf(colour), port.targetPort), configOf(colour).port, `${service.metadata?.name} ${port.name}`);
          }
        }
      }
    });

    it('routes the public endpoints to wschat-active through ingress-nginx, never /metrics', () => {
      const ingress = oneOf(ROUTING, Ingress.is, 'Ingresses');
      assert.equal(ingress.spec?.ingressClassName, 'nginx');
      const paths = (ingress.spec?.rules ?? []).flatMap((rule) => rule.http?.paths ?? []);
      for (const rule of paths) {
        assert.equal(rule.backend.service?.name, 'wschat-active', rule.path);
        const ports = named(services(), 'wschat-active').spec?.ports ?? [];
        assert.ok(ports.some((port) => port.name === rule.backend.service?.port?.name), `${rule.path}: a port of wschat-active`);
      }
      for (const target of PUBLIC_PATHS) assert.ok(paths.some((rule) => routes(rule, target)), `${target} is routed`);
      assert.ok(!paths.some((rule) => routes(rule, '/metrics')), '/metrics stays inside the cluster');
    });

    it('keeps idle WebSockets through ingress-nginx for three heartbeat intervals', () => {
      const annotations = oneOf(ROUTING, Ingress.is, 'Ingresses').metadata?.annotations ?? {};
      const heartbeatS = Math.max(...COLOURS.map((colour) => configOf(colour).heartbeatIntervalMs)) / 1000;
      for (const name of ['proxy-read-timeout', 'proxy-send-timeout']) {
        const seconds = Number(annotations[`nginx.ingress.kubernetes.io/${name}`]);
        assert.ok(seconds >= 3 * heartbeatS, `${name} ${seconds} s < 3 x ${heartbeatS} s`);
      }
      assert.match(annotations['nginx.ingress.kubernetes.io/proxy-next-upstream'] ?? '', /http_503/, 'an upgrade refused by a draining replica is retried');
    });
  });

  describe('monitoring', () => {
    const serviceMonitor = (): IServiceMonitor => oneOf(MONITORING, ServiceMonitor.is, 'ServiceMonitors');

    it('scrapes every pod of both colours once, through wschat-metrics', () => {
      const allServices = [...allOf(ROUTING, Service.is), ...allOf(MONITORING, Service.is)];
      const scraped = allServices.filter((service) => selects(serviceMonitor().spec.selector.matchLabels, service.metadata?.labels));
      assert.deepEqual(
        scraped.map((service) => service.metadata?.name),
        ['wschat-metrics'],
      );
      const metrics = scraped[0]!;
      assert.deepEqual(coloursSelected(metrics.spec?.selector), [...COLOURS]);
      assert.equal(metrics.spec?.publishNotReadyAddresses, true, 'pods that are not ready are scraped too');
      for (const endpoint of serviceMonitor().spec.endpoints) {
        assert.ok(metrics.spec?.ports?.some((port) => port.name === endpoint.port), `endpoint port ${endpoint.port}`);
        assert.equal(endpoint.path ?? '/metrics', '/metrics');
      }
    });

    it('labels the targets as the alert rules expect: job, colour, replica', () => {
      const alerts = read('observability/prometheus/alerts.yml');
      const jobs = new Set([...alerts.matchAll(/job="([^"]+)"/g)].map((match) => match[1]!));
      jobs.delete('prometheus'); // Prometheus's own job (deploy/k8s/README.md)
      const jobLabel = serviceMonitor().spec.jobLabel;
      assert.ok(jobLabel !== undefined, 'jobLabel is set');
      assert.deepEqual([...jobs], [named(allOf(MONITORING, Service.is), 'wschat-metrics').metadata?.labels?.[jobLabel]]);
      const relabelings = serviceMonitor().spec.endpoints.flatMap((endpoint) => endpoint.relabelings ?? []);
      const sourceOf = (target: string): string[] | undefined => relabelings.find((relabel) => relabel.targetLabel === target)?.sourceLabels;
      assert.deepEqual(sourceOf('colour'), ['__meta_kubernetes_pod_label_colour']);
      assert.deepEqual(sourceOf('replica'), ['__meta_kubernetes_pod_name']);
      for (const colour of COLOURS) assert.equal(podLabels(colour).colour, colour);
    });

    it('carries the alert rules of observability/prometheus/alerts.yml, unchanged', () => {
      const alerts: unknown = parse(read('observability/prometheus/alerts.yml'));
      assert.ok(typeof alerts === 'object' && alerts !== null && 'groups' in alerts);
      const rule = oneOf(MONITORING, PrometheusRule.is, 'PrometheusRules');
      assert.deepEqual(rule.spec.groups, alerts.groups, 'copy the groups of alerts.yml into deploy/k8s/monitoring/prometheus-rule.yaml');
    });
  });

  describe('tools/k8s/k8s-promote.sh', () => {
    const constants = (): Map<string, string> => scriptConstants('tools/k8s/k8s-promote.sh');

    it('names the Services, Deployments, label and namespace the manifests define', () => {
      const services = allOf(ROUTING, Service.is);
      for (const name of ['ACTIVE_SERVICE', 'PREVIEW_SERVICE']) named(services, constants().get(name) ?? `<${name}>`);
      for (const colour of COLOURS) assert.equal(deploymentOf(colour).metadata?.name, `${constants().get('DEPLOYMENT_PREFIX')}${colour}`);
      const label = constants().get('COLOUR_LABEL') ?? '';
      for (const colour of COLOURS) assert.equal(podLabels(colour)[label], colour, `pods carry the label ${label}`);
      for (const service of services) assert.ok(service.spec?.selector?.[label] !== undefined, `${service.metadata?.name} selects on ${label}`);
      assert.equal(constants().get('NAMESPACE'), `\${WSCHAT_NAMESPACE:-${NAMESPACE}}`);
    });

    it('starts colours at the HPA minimum and waits past the grace period for the old one', () => {
      for (const colour of COLOURS) {
        const hpa = oneOf(overlay(colour), HorizontalPodAutoscaler.is, 'HorizontalPodAutoscalers');
        assert.equal(Number(constants().get('MIN_REPLICAS')), hpa.spec?.minReplicas);
        const grace = deploymentOf(colour).spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
        assert.ok(Number(constants().get('RETIRE_TIMEOUT_S')) > grace, 'RETIRE_TIMEOUT_S > terminationGracePeriodSeconds');
      }
    });
  });
});
