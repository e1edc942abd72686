// The alerts end to end, keepalived's smtp_alert replaced (issue #14): on the test bed with the real controller,
// agents and nginx, a real Prometheus scrapes the three agents with deploy/prometheus/ha-nginx-rules.yaml as it is, and
// a real Alertmanager with deploy/alertmanager/ha-nginx-mail.yaml (only its SMTP server replaced) mails Debian's
// aiosmtpd. All three run in the lab's client namespace, which reaches the nodes' addresses; the host's interfaces are
// never touched. nginx is made unhealthy by stopping its processes (SIGSTOP), so its pod stays and comes back at once.
// The controller runs on the host without a metrics port here, so only the agents are scraped.
import type { ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_AGENT_HTTP_PORT } from "../../src/controller/command.js";
import { waitFor } from "../../testing/lab/wait.js";
import { havipName, havipNamespace, startHaVipBed, type HaVipBed } from "../../testing/testbed/havip-bed.js";
import { locateAlertmanager, locatePrometheus } from "../monitoring/tools.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const rulesPath = join(repoRoot, "deploy/prometheus/ha-nginx-rules.yaml");
const mailConfigPath = join(repoRoot, "deploy/alertmanager/ha-nginx-mail.yaml");
/** The example's SMTP server setting, the one line the test replaces in it. */
const smarthostLine = /^(\s*smtp_smarthost:\s*)\S+$/m;
const havip = `${havipNamespace}/${havipName}`;
const ports = { prometheus: 9090, alertmanager: 9093, smtp: 2525 } as const;
/** Debian's python3, which python3-aiosmtpd installs into; a python3 earlier on PATH (pyenv) lacks the module. */
const debianPython = "/usr/bin/python3";

interface PrometheusAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
}

interface Mail {
  readonly file: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The message after its headers, quoted-printable decoded. */
  readonly body: string;
}

/** Headers unfolded (RFC 5322 §2.2.3), keys lower-cased; the body with quoted-printable soft breaks and escapes undone. */
function parseMail(file: string, raw: string): Mail {
  const text = raw.replace(/\r\n/g, "\n");
  const split = text.indexOf("\n\n");
  const head = (split < 0 ? text : text.slice(0, split)).replace(/\n(?=[ \t])/g, "");
  const headers: Record<string, string> = {};
  for (const line of head.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const encoded = split < 0 ? "" : text.slice(split + 2).replace(/=\n/g, "");
  const body = Buffer.from(encoded.replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))), "latin1").toString("utf8");
  return { file, headers, body };
}

describe("e2e: Prometheus alerts on the agents' metrics and Alertmanager mails them", () => {
  let havipBed: HaVipBed | undefined;
  let scratch = "";
  let maildir = "";
  const children: { readonly name: string; readonly child: ChildProcess; readonly logFile: string }[] = [];
  /** nginx process groups this test has stopped: continued in afterAll whatever happened, so teardown can stop them. */
  const stoppedNginx = new Set<number>();
  const measured: Record<string, number | string> = {};
  const log = (line: string): void => {
    process.stdout.write(`[alerting e2e] ${line}\n`);
  };
  const bed = (): HaVipBed => {
    if (havipBed === undefined) throw new Error("no test bed");
    return havipBed;
  };
  const client = () => bed().testbed.lab.client;
  const url = (port: number, path: string): string => `http://${client().address}:${port}${path}`;

  async function getJson<T>(port: number, path: string): Promise<T> {
    const answer = await bed().testbed.lab.httpGet(client(), url(port, path), { timeoutMs: 5_000 });
    if (answer.status !== 200) throw new Error(`GET ${path} answered ${answer.status}: ${answer.body.slice(0, 300)}`);
    return JSON.parse(answer.body) as T;
  }

  async function query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const answer = await getJson<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] } }>(ports.prometheus, `/api/v1/query?query=${encodeURIComponent(promql)}`);
    return answer.data.result;
  }

  async function activeAlerts(alertname: string): Promise<readonly PrometheusAlert[]> {
    const answer = await getJson<{ data: { alerts: PrometheusAlert[] } }>(ports.prometheus, "/api/v1/alerts");
    return answer.data.alerts.filter((alert) => alert.labels.alertname === alertname && alert.labels.havip === havip);
  }

  function mails(): Mail[] {
    const folder = join(maildir, "new");
    if (!existsSync(folder)) return [];
    return readdirSync(folder)
      .sort()
      .map((name) => parseMail(name, readFileSync(join(folder, name), "utf8")));
  }

  async function waitForMail(what: string, timeoutMs: number, matches: (mail: Mail) => boolean): Promise<Mail> {
    let found: Mail | undefined;
    await waitFor(
      () => {
        found = mails().find(matches);
        return found !== undefined;
      },
      { timeoutMs, intervalMs: 250, what },
    );
    if (found === undefined) throw new Error("unreachable");
    return found;
  }

  function spawnInClient(name: string, command: string, args: readonly string[]): void {
    const logFile = join(scratch, `${name}.log`);
    const fd = openSync(logFile, "a");
    const child = bed().testbed.lab.spawn(client(), command, args, { stdio: ["ignore", fd, fd] });
    closeSync(fd);
    children.push({ name, child, logFile });
  }

  async function stopChild(child: ChildProcess): Promise<void> {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
    process.kill(-child.pid, "SIGTERM");
    const timer = setTimeout(() => child.pid !== undefined && process.kill(-child.pid, "SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  /** The process groups of the bed resource's nginx containers, on the given nodes. */
  function nginxGroups(nodes: readonly string[]): number[] {
    const groups = bed()
      .testbed.runner.processes()
      .filter((container) => container.namespace === havipNamespace && container.container === "nginx" && nodes.includes(container.node))
      .map((container) => container.pid);
    expect(groups.length, `nginx processes on ${nodes.join(", ")}`).toBe(nodes.length);
    return groups;
  }

  function stopNginx(nodes: readonly string[]): void {
    for (const group of nginxGroups(nodes)) {
      process.kill(-group, "SIGSTOP");
      stoppedNginx.add(group);
    }
  }

  function continueNginx(groups: Iterable<number>): void {
    for (const group of [...groups]) {
      try {
        process.kill(-group, "SIGCONT");
      } catch {
        // The group is gone (its pod was replaced): nothing left to continue.
      }
      stoppedNginx.delete(group);
    }
  }

  async function masters(): Promise<string[]> {
    return (await bed().statusNodes()).filter((entry) => entry.state === "MASTER").map((entry) => entry.node);
  }

  beforeAll(async () => {
    const prometheus = locatePrometheus();
    const alertmanager = locateAlertmanager();
    const started = Date.now();
    havipBed = await startHaVipBed({ shouldWaitForNginx: true, log });
    await bed().settled();
    const bedUpAt = Date.now();
    measured.bedMs = bedUpAt - started;
    scratch = mkdtempSync(join(tmpdir(), "ha-nginx-alerting-"));
    maildir = join(scratch, "maildir");
    const address = client().address;

    const exampleConfig = readFileSync(mailConfigPath, "utf8");
    expect(exampleConfig, `an smtp_smarthost line in ${mailConfigPath}`).toMatch(smarthostLine);
    const alertmanagerConfig = join(scratch, "alertmanager.yaml");
    writeFileSync(alertmanagerConfig, exampleConfig.replace(smarthostLine, `$1${address}:${ports.smtp}`));

    const targets = bed().testbed.nodeNames.map((node) => `"${bed().testbed.hostOf(node).address}:${DEFAULT_AGENT_HTTP_PORT}"`);
    const prometheusConfig = join(scratch, "prometheus.yaml");
    // 1 s scrapes and evaluations, so the rules' own `for:` is all the waiting; the job name is the one the rules and
    // the chart's PodMonitor use.
    writeFileSync(
      prometheusConfig,
      `global: { scrape_interval: 1s, scrape_timeout: 900ms, evaluation_interval: 1s }
rule_files: ["${rulesPath}"]
alerting:
  alertmanagers:
    - static_configs: [{ targets: ["${address}:${ports.alertmanager}"] }]
scrape_configs:
  - job_name: ha-nginx-agent
    static_configs: [{ targets: [${targets.join(", ")}] }]
`,
    );

    spawnInClient("smtp", debianPython, ["-m", "aiosmtpd", "-n", "-l", `${address}:${ports.smtp}`, "-c", "aiosmtpd.handlers.Mailbox", maildir]);
    spawnInClient("alertmanager", alertmanager, [
      `--config.file=${alertmanagerConfig}`,
      `--storage.path=${join(scratch, "alertmanager-data")}`,
      `--web.listen-address=${address}:${ports.alertmanager}`,
      // No high-availability peers: an empty address turns the gossip listener off.
      "--cluster.listen-address=",
    ]);
    spawnInClient("prometheus", prometheus, [
      `--config.file=${prometheusConfig}`,
      `--storage.tsdb.path=${join(scratch, "prometheus-data")}`,
      `--web.listen-address=${address}:${ports.prometheus}`,
    ]);
    for (const [name, port] of [["alertmanager", ports.alertmanager], ["prometheus", ports.prometheus]] as const) {
      await waitFor(async () => (await bed().testbed.lab.httpGet(client(), url(port, "/-/ready"))).status === 200, { timeoutMs: 60_000, intervalMs: 250, what: `${name} ready` });
    }
    await waitFor(async () => (await bed().testbed.lab.exec(client(), "bash", ["-c", `exec 3<>/dev/tcp/${address}/${ports.smtp}`])).code === 0, {
      timeoutMs: 30_000,
      intervalMs: 250,
      what: "the SMTP sink listening",
    });
    // A change is seen only against samples from before it: wait for a few of every agent's MASTER gauge.
    await waitFor(
      async () => {
        const up = await query('up{job="ha-nginx-agent"} == 1');
        const sampled = await query(`count_over_time(ha_nginx_vrrp_state{havip="${havip}",state="Master"}[1m]) >= 3`);
        return up.length === 3 && sampled.length === 3;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "Prometheus to scrape all three agents a few times" },
    );
    measured.monitoringReadyMs = Date.now() - bedUpAt;
    log(`bed up in ${bedUpAt - started} ms, Prometheus, Alertmanager and the SMTP sink ready ${Date.now() - bedUpAt} ms later`);
  }, 300_000);

  afterEach((context) => {
    if (context.task.result?.state !== "fail") return;
    for (const { name, logFile } of children) log(`${name} log (tail):\n${existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-3000) : "(none)"}`);
    log(`mails so far:\n${mails().map((mail) => `${mail.file}: ${mail.headers.subject ?? "?"}`).join("\n")}`);
  });

  afterAll(async () => {
    if (havipBed !== undefined) continueNginx(stoppedNginx);
    for (const { child } of children.reverse()) await stopChild(child).catch(() => undefined);
    await havipBed?.stop();
    if (scratch !== "") rmSync(scratch, { recursive: true, force: true });
    log(`measurements: ${JSON.stringify(measured)}`);
  }, 120_000);

  it("a VIP move reaches the SMTP sink as a mail naming the resource and the new MASTER", async () => {
    const { master: before } = await bed().settled();
    const stoppedAt = Date.now();
    stopNginx([before]);
    let after = "";
    await waitFor(
      async () => {
        const current = await masters();
        after = current[0] ?? "";
        return current.length === 1 && after !== before;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `a MASTER other than ${before}` },
    );
    measured.vipMove = `${before} -> ${after}`;
    const mail = await waitForMail(`a mail that ${after} is the new MASTER`, 60_000, (candidate) => (candidate.headers.subject ?? "").includes("HaNginxMasterChanged"));
    measured.moveToMailMs = Date.now() - stoppedAt;
    expect(mail.headers.subject).toBe(`[FIRING] HaNginxMasterChanged: ${after} is the new MASTER of ${havip}`);
    expect(mail.headers.from).toBe("ha-nginx@example.org");
    expect(mail.headers.to).toBe("ops@example.org");
    expect(mail.body).toContain(`FIRING: ${after} is the new MASTER of ${havip}`);
    expect(mail.body).toContain(`Alert HaNginxMasterChanged (info)`);
    expect(mail.body).toMatch(new RegExp(`Labels:.* havip=${havip} .*node=${after} `));
    // Only the node that took over is news: the one that lost the VIP sends no "new MASTER" mail.
    expect(mails().filter((candidate) => (candidate.headers.subject ?? "").includes(`${before} is the new MASTER`))).toEqual([]);

    continueNginx(nginxGroups([before]));
    await waitFor(async () => (await bed().agentState(before)).state === "Backup", { timeoutMs: 30_000, intervalMs: 200, what: `${before} back to BACKUP` });
  }, 120_000);

  it("nginx stopped on every node: HaNginxNoMaster fires after its minute and is mailed, and resolves once nginx is back", async () => {
    const nodes = bed().testbed.nodeNames;
    expect(await activeAlerts("HaNginxNoMaster")).toEqual([]);
    const stoppedAt = Date.now();
    stopNginx(nodes);
    await waitFor(async () => (await masters()).length === 0, { timeoutMs: 30_000, intervalMs: 200, what: "no MASTER left" });
    await waitFor(async () => (await activeAlerts("HaNginxNoMaster")).some((alert) => alert.state === "firing"), {
      timeoutMs: 150_000,
      intervalMs: 500,
      what: "HaNginxNoMaster firing in Prometheus",
    });
    const firingAfterMs = Date.now() - stoppedAt;
    measured.noMasterFiringMs = firingAfterMs;
    // The rules file's `for: 1m` holds, unchanged: pending first, firing only after the minute.
    expect(firingAfterMs).toBeGreaterThanOrEqual(60_000);
    const alert = (await activeAlerts("HaNginxNoMaster"))[0];
    expect(alert?.labels).toMatchObject({ severity: "critical", havip, vrid: String(bed().vrid) });

    const mail = await waitForMail("the HaNginxNoMaster mail", 60_000, (candidate) => (candidate.headers.subject ?? "").startsWith("[FIRING] HaNginxNoMaster"));
    measured.noMasterMailMs = Date.now() - stoppedAt;
    expect(mail.headers.subject).toBe(`[FIRING] HaNginxNoMaster: No node is MASTER for ${havip}: nobody holds its VIP`);
    expect(mail.body).toContain("Alert HaNginxNoMaster (critical)");

    const continuedAt = Date.now();
    continueNginx(nginxGroups(nodes));
    await waitFor(async () => (await masters()).length === 1, { timeoutMs: 30_000, intervalMs: 200, what: "a MASTER again" });
    await waitFor(async () => (await activeAlerts("HaNginxNoMaster")).length === 0, { timeoutMs: 30_000, intervalMs: 500, what: "HaNginxNoMaster resolved in Prometheus" });
    measured.noMasterResolvedMs = Date.now() - continuedAt;
    // send_resolved: the all-clear is mailed too, at the group's next flush (group_interval, 1m).
    const resolved = await waitForMail("the HaNginxNoMaster resolved mail", 120_000, (candidate) => (candidate.headers.subject ?? "").startsWith("[RESOLVED] HaNginxNoMaster"));
    measured.noMasterResolvedMailMs = Date.now() - continuedAt;
    expect(resolved.body).toMatch(/RESOLVED: No node is MASTER .*\n.*resolved at /);
  }, 300_000);
});
