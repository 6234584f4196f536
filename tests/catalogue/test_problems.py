"""Every kind of mistake is reported at its own line, with its field path and a clear message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.catalogue.helpers import lines, load_text

SLO_HEAD = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: s}
"""

# (id, case.yaml text with `#!` on the line the problem must point at, field path, message phrase)
CASES = [
    (
        "prometheus-url",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: p}\nspec:\n  type: Prometheus\n"
        "  connectionDetails:\n    url: ftp://prom  #!\n",
        "spec.connectionDetails.url",
        "is not an http(s) URL",
    ),
    (
        "prometheus-timeout",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: p}\nspec:\n  type: Prometheus\n"
        "  connectionDetails:\n    url: http://prom:9090\n    timeout: 3 seconds  #!\n",
        "spec.connectionDetails.timeout",
        "invalid duration '3 seconds'",
    ),
    (
        "bad-name-still-checks-the-spec",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: Prom_1}\nspec:\n  type: Graphite  #!\n",
        "spec.type",
        "unknown data source type 'Graphite'",
    ),
    (
        "api-version",
        "apiVersion: openslo/v1alpha  #!\nkind: Service\nmetadata: {name: x}\n",
        "apiVersion",
        "unsupported apiVersion 'openslo/v1alpha'",
    ),
    (
        "missing-api-version",
        "kind: Service  #!\nmetadata: {name: x}\n",
        "apiVersion",
        "required field missing",
    ),
    (
        "unknown-kind",
        "apiVersion: openslo/v1\nkind: Slo  #!\nmetadata: {name: x}\n",
        "kind",
        "unknown kind 'Slo'",
    ),
    (
        "unknown-top-field",
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\nstatus: {}  #!\n",
        "status",
        "unknown field",
    ),
    (
        "missing-name",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:  #!\n  displayName: X\n",
        "metadata.name",
        "required field missing",
    ),
    (
        "bad-name",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: Checkout_API  #!\n",
        "metadata.name",
        "invalid name 'Checkout_API'",
    ),
    (
        "long-name",
        f"apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: {'a' * 64}  #!\n",
        "metadata.name",
        "at most 63",
    ),
    (
        "metadata-unknown-field",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: x\n  team: a  #!\n",
        "metadata.team",
        "unknown field",
    ),
    (
        "labels-not-mapping",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: x\n  labels: [a]  #!\n",
        "metadata.labels",
        "expected a mapping, got a list",
    ),
    (
        "label-key",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: x\n  labels:\n    -team-: a  #!\n",
        "metadata.labels.-team-",
        "invalid label key",
    ),
    (
        "service-unknown-field",
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\nspec:\n  owner: me  #!\n",
        "spec.owner",
        "unknown field",
    ),
    (
        "duplicate-name",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata:\n  name: requests  #!\nspec:\n"
        "  ratioMetric:\n    raw: {metricSource: {type: Simulated, spec: {query: r}}}\n"
        "    rawType: success\n",
        "metadata.name",
        "duplicate SLI name 'requests' (first defined at ",
    ),
    (
        "duplicate-key",
        "apiVersion: openslo/v1\nkind: Service\nmetadata:\n  name: x\n  name: y  #!\n",
        "metadata.name",
        "duplicate key 'name'",
    ),
    # SLO spec
    (
        "spec-typo",
        SLO_HEAD + "spec:\n  servce: shop  #!\n",
        "spec.servce",
        "did you mean 'service'?",
    ),
    (
        "missing-service",
        SLO_HEAD + "spec:  #!\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow: [{duration: 7d, isRolling: true}]\n",
        "spec.service",
        "required field missing",
    ),
    (
        "target-type",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - target: high  #!\n",
        "spec.objectives[0].target",
        "expected a number, got a string ('high')",
    ),
    (
        "target-range",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - displayName: a\n      target: 99.9  #!\n",
        "spec.objectives[0].target",
        "less than 1",
    ),
    (
        "target-percent-range",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - targetPercent: 100  #!\n",
        "spec.objectives[0].targetPercent",
        "less than 100",
    ),
    (
        "target-and-percent",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - target: 0.99\n      targetPercent: 99  #!\n",
        "spec.objectives[0].targetPercent",
        "target and targetPercent cannot be used together",
    ),
    (
        "no-target",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - displayName: a  #!\n",
        "spec.objectives[0].target",
        "give target",
    ),
    (
        "objective-typo",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - target: 0.9\n      tagret: 0.9  #!\n",
        "spec.objectives[0].tagret",
        "did you mean 'target'?",
    ),
    (
        "no-objectives",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: []  #!\n",
        "spec.objectives",
        "at least one objective",
    ),
    (
        "bad-duration",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 30days  #!\n"
        "      isRolling: true\n",
        "spec.timeWindow[0].duration",
        "invalid duration '30days'",
    ),
    (
        "two-windows",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:  #!\n    - {duration: 7d, isRolling: true}\n"
        "    - {duration: 30d, isRolling: true}\n",
        "spec.timeWindow",
        "exactly one item (got 2)",
    ),
    (
        "window-typo",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 7d\n      isRolling: true\n"
        "      rolling: true  #!\n",
        "spec.timeWindow[0].rolling",
        "unknown field",
    ),
    (
        "not-rolling-no-calendar",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 1M\n      isRolling: false  #!\n",
        "spec.timeWindow[0].isRolling",
        "no calendar",
    ),
    (
        "rolling-omitted-no-calendar",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 1M  #!\n",
        "spec.timeWindow[0]",
        "needs isRolling: true",
    ),
    (
        "rolling-with-calendar",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 1M\n      isRolling: true\n"
        "      calendar:  #!\n        timeZone: UTC\n",
        "spec.timeWindow[0].calendar",
        "has no calendar",
    ),
    (
        "time-zone",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 1M\n      calendar:\n"
        "        startTime: 2024-01-01 00:00:00\n        timeZone: Europe/Atlantis  #!\n",
        "spec.timeWindow[0].calendar.timeZone",
        "unknown time zone 'Europe/Atlantis'",
    ),
    (
        "start-time",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  timeWindow:\n    - duration: 1M\n      calendar:\n"
        "        startTime: first of January  #!\n        timeZone: UTC\n",
        "spec.timeWindow[0].calendar.startTime",
        "invalid startTime",
    ),
    (
        "budgeting-method",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n"
        "  budgetingMethod: Occurences  #!\n  objectives: [{target: 0.9}]\n",
        "spec.budgetingMethod",
        "unknown budgetingMethod 'Occurences'",
    ),
    (
        "missing-budgeting-method",
        SLO_HEAD + "spec:  #!\n  service: shop\n  indicatorRef: requests\n  objectives: [{target: 0.9}]\n",
        "spec.budgetingMethod",
        "required field missing",
    ),
    (
        "indicator-and-ref",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  indicatorRef: requests  #!\n  indicator:\n"
        "    metadata: {name: i}\n"
        "    spec: {thresholdMetric: {metricSource: {type: Simulated, spec: {query: q}}}}\n",
        "spec.indicatorRef",
        "indicator and indicatorRef cannot be used together",
    ),
    (
        "no-indicator",
        SLO_HEAD + "spec:  #!\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n",
        "spec",
        "needs indicator (an inline SLI) or indicatorRef",
    ),
    (
        "dangling-indicator-ref",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  indicatorRef: nope  #!\n",
        "spec.indicatorRef",
        "no SLI named 'nope' (known: requests)",
    ),
    (
        "dangling-alert-policy-ref",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  indicatorRef: requests\n  alertPolicies:\n"
        "    - alertPolicyRef: pager  #!\n",
        "spec.alertPolicies[0].alertPolicyRef",
        "no AlertPolicy named 'pager' (known: page)",
    ),
    (
        "inline-policy-kind",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives: [{target: 0.9}]\n  indicatorRef: requests\n  alertPolicies:\n"
        "    - kind: AlertCondition  #!\n      metadata: {name: p}\n"
        "      spec: {conditions: [{conditionRef: burn}]}\n",
        "spec.alertPolicies[0].kind",
        "expected kind AlertPolicy",
    ),
    (
        "timeslices-without-window",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Timeslices\n"
        "  objectives:\n    - target: 0.9  #!\n      timeSliceTarget: 0.9\n",
        "spec.objectives[0].timeSliceWindow",
        "Timeslices needs timeSliceWindow",
    ),
    (
        "timeslices-without-target",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Timeslices\n"
        "  objectives:\n    - target: 0.9  #!\n      timeSliceWindow: 1m\n",
        "spec.objectives[0].timeSliceTarget",
        "Timeslices needs timeSliceTarget",
    ),
    (
        "ratio-timeslices-without-window",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n"
        "  budgetingMethod: RatioTimeslices\n  objectives:\n    - target: 0.9  #!\n",
        "spec.objectives[0].timeSliceWindow",
        "RatioTimeslices needs timeSliceWindow",
    ),
    (
        "timeslice-target-range",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Timeslices\n"
        "  objectives:\n    - target: 0.9\n      timeSliceWindow: 1m\n      timeSliceTarget: 0  #!\n",
        "spec.objectives[0].timeSliceTarget",
        "greater than 0 and at most 1",
    ),
    (
        "timeslice-window-divides-hour",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Timeslices\n"
        "  objectives:\n    - target: 0.9\n      timeSliceTarget: 0.9\n      timeSliceWindow: 7m  #!\n",
        "spec.objectives[0].timeSliceWindow",
        "divides 1 hour",
    ),
    (
        "timeslice-window-seconds",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n"
        "  budgetingMethod: RatioTimeslices\n"
        "  objectives:\n    - target: 0.9\n      timeSliceWindow: 90s  #!\n",
        "spec.objectives[0].timeSliceWindow",
        "slo-bot stores time slices",
    ),
    (
        "objective-op",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - target: 0.9\n      op: le  #!\n",
        "spec.objectives[0].op",
        "op must be one of lt, lte, gt, gte",
    ),
    (
        "threshold-without-op",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n  indicator:\n"
        "    metadata: {name: latency}\n"
        "    spec: {thresholdMetric: {metricSource: {type: Simulated, spec: {query: p99}}}}\n"
        "  objectives:\n    - target: 0.9  #!\n      value: 0.3\n",
        "spec.objectives[0].op",
        "need op and value",
    ),
    (
        "composite-and-spec-indicator",
        SLO_HEAD + "spec:  #!\n  service: shop\n  indicatorRef: requests\n"
        "  budgetingMethod: Occurrences\n  objectives:\n    - {target: 0.9, indicatorRef: requests}\n",
        "spec",
        "not both",
    ),
    (
        "composite-negative-weight",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {target: 0.9, indicatorRef: requests, compositeWeight: 1}\n"
        "    - {target: 0.99, indicatorRef: requests, compositeWeight: -2}  #!\n",
        "spec.objectives[1].compositeWeight",
        "must be greater than 0",
    ),
    (
        "composite-weight-left-out",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {target: 0.9, indicatorRef: requests, compositeWeight: 2}\n"
        "    - {target: 0.99, indicatorRef: requests}  #!\n",
        "spec.objectives[1]",
        "required field missing: compositeWeight",
    ),
    (
        "composite-mixed-slices",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: RatioTimeslices\n  objectives:\n"
        "    - {target: 0.9, indicatorRef: requests, timeSliceWindow: 1m}\n"
        "    - target: 0.99\n      indicatorRef: requests\n      timeSliceWindow: 5m  #!\n",
        "spec.objectives[1].timeSliceWindow",
        "the same timeSliceWindow",
    ),
    (
        "composite-part-on-unknown-source",
        SLO_HEAD + "spec:\n  service: shop\n  budgetingMethod: Occurrences\n  objectives:\n"
        "    - {target: 0.9, indicatorRef: requests}\n"
        "    - target: 0.99\n      indicator:\n        metadata: {name: pay}\n        spec:\n"
        "          thresholdMetric:\n            metricSource:\n"
        "              metricSourceRef: prom  #!\n              spec: {query: p99}\n",
        "spec.objectives[1].indicator.spec.thresholdMetric.metricSource.metricSourceRef",
        "no DataSource named 'prom' (known: demo)",
    ),
    (
        "composite-grouped",
        "apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: s\n  annotations:\n"
        "    slo-bot/group-by: route  #!\nspec:\n  service: shop\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - {target: 0.9, indicatorRef: requests}\n",
        "metadata.annotations.slo-bot/group-by",
        "a composite SLO cannot be grouped",
    ),
    (
        "same-split-name",
        SLO_HEAD + "spec:\n  service: shop\n  indicatorRef: requests\n  budgetingMethod: Occurrences\n"
        "  objectives:\n    - {displayName: Fast, target: 0.9}\n"
        "    - {displayName: fast, target: 0.99}  #!\n",
        "spec.objectives[1]",
        "SLO name 's-fast' is already used",
    ),
    # SLI
    (
        "good-and-bad",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:\n"
        "    good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}\n"
        "    bad: {metricSource: {metricSourceRef: demo, spec: {query: bad}}}  #!\n"
        "    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}\n",
        "spec.ratioMetric.bad",
        "good and bad cannot be used together",
    ),
    (
        "no-total",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:  #!\n"
        "    good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}\n",
        "spec.ratioMetric.total",
        "ratioMetric needs total",
    ),
    (
        "no-good-or-bad",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:  #!\n"
        "    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}\n",
        "spec.ratioMetric",
        "needs good or bad",
    ),
    (
        "raw-without-raw-type",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:  #!\n"
        "    raw: {metricSource: {metricSourceRef: demo, spec: {query: ratio}}}\n",
        "spec.ratioMetric.rawType",
        "raw needs rawType (success or failure)",
    ),
    (
        "raw-type-value",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:\n"
        "    raw: {metricSource: {metricSourceRef: demo, spec: {query: ratio}}}\n"
        "    rawType: errors  #!\n",
        "spec.ratioMetric.rawType",
        "rawType must be success or failure",
    ),
    (
        "raw-with-total",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:\n"
        "    rawType: success\n"
        "    raw: {metricSource: {metricSourceRef: demo, spec: {query: ratio}}}  #!\n"
        "    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}\n",
        "spec.ratioMetric.raw",
        "raw cannot be used together with good, bad or total",
    ),
    (
        "counter-type",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  ratioMetric:\n"
        '    counter: "true"  #!\n'
        "    good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}\n"
        "    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}\n",
        "spec.ratioMetric.counter",
        "expected true or false, got a string ('true')",
    ),
    (
        "threshold-and-ratio",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n"
        "  thresholdMetric: {metricSource: {metricSourceRef: demo, spec: {query: p99}}}\n"
        "  ratioMetric:  #!\n"
        "    good: {metricSource: {metricSourceRef: demo, spec: {query: good}}}\n"
        "    total: {metricSource: {metricSourceRef: demo, spec: {query: total}}}\n",
        "spec.ratioMetric",
        "thresholdMetric and ratioMetric cannot be used together",
    ),
    (
        "no-metric",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:  #!\n  description: d\n",
        "spec",
        "needs ratioMetric or thresholdMetric",
    ),
    (
        "metric-source-without-ref-or-type",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  thresholdMetric:\n"
        "    metricSource:  #!\n      spec: {query: p99}\n",
        "spec.thresholdMetric.metricSource",
        "needs metricSourceRef",
    ),
    (
        "missing-query",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  thresholdMetric:\n"
        "    metricSource:\n      metricSourceRef: demo\n      spec:  #!\n        metric: p99\n",
        "spec.thresholdMetric.metricSource.spec.query",
        "every slo-bot source reads its query from spec.query",
    ),
    (
        "dangling-metric-source-ref",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  thresholdMetric:\n"
        "    metricSource:\n      metricSourceRef: prom  #!\n      spec: {query: p99}\n",
        "spec.thresholdMetric.metricSource.metricSourceRef",
        "no DataSource named 'prom' (known: demo)",
    ),
    (
        "metric-source-unknown-type",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  thresholdMetric:\n"
        "    metricSource:\n      type: Dynatrace  #!\n      spec: {query: p99}\n",
        "spec.thresholdMetric.metricSource.type",
        "unknown data source type 'Dynatrace'",
    ),
    (
        "metric-source-type-mismatch",
        "apiVersion: openslo/v1\nkind: SLI\nmetadata: {name: x}\nspec:\n  thresholdMetric:\n"
        "    metricSource:\n      metricSourceRef: demo\n      type: Prometheus  #!\n"
        "      spec: {query: p99}\n",
        "spec.thresholdMetric.metricSource.type",
        "differs from DataSource 'demo' (Simulated)",
    ),
    # DataSource
    (
        "datasource-type",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: x}\nspec:\n  type: CloudWatch  #!\n",
        "spec.type",
        "unknown data source type 'CloudWatch': slo-bot reads ",
    ),
    (
        "connection-details-list",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: x}\nspec:\n"
        "  type: Prometheus\n  connectionDetails: [a]  #!\n",
        "spec.connectionDetails",
        "slo-bot needs a mapping",
    ),
    # Alerting
    (
        "condition-kind",
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: x}\nspec:\n"
        "  severity: page\n  condition:\n    kind: threshold  #!\n    threshold: 2\n"
        "    lookbackWindow: 1h\n",
        "spec.condition.kind",
        "OpenSLO v1 defines only burnrate",
    ),
    (
        "condition-op",
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: x}\nspec:\n"
        "  severity: page\n  condition:\n    op: above  #!\n    threshold: 2\n"
        "    lookbackWindow: 1h\n",
        "spec.condition.op",
        "op must be one of lt, lte, gt, gte",
    ),
    (
        "condition-lookback",
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: x}\nspec:\n"
        "  severity: page\n  condition:  #!\n    threshold: 2\n",
        "spec.condition.lookbackWindow",
        "required field missing",
    ),
    (
        "condition-severity",
        "apiVersion: openslo/v1\nkind: AlertCondition\nmetadata: {name: x}\nspec:  #!\n"
        "  condition: {threshold: 2, lookbackWindow: 1h}\n",
        "spec.severity",
        "required field missing",
    ),
    (
        "dangling-condition-ref",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec:\n  conditions:\n"
        "    - conditionRef: burning  #!\n",
        "spec.conditions[0].conditionRef",
        "no AlertCondition named 'burning' (known: burn)",
    ),
    (
        "dangling-target-ref",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec:\n"
        "  conditions: [{conditionRef: burn}]\n  notificationTargets:\n"
        "    - targetRef: pager  #!\n",
        "spec.notificationTargets[0].targetRef",
        "no AlertNotificationTarget named 'pager' (known: chat)",
    ),
    (
        "two-conditions",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec:\n"
        "  conditions:  #!\n    - conditionRef: burn\n    - conditionRef: burn\n",
        "spec.conditions",
        "one condition per AlertPolicy",
    ),
    (
        "ref-and-inline",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec:\n  conditions:\n"
        "    - conditionRef: burn  #!\n      kind: AlertCondition\n",
        "spec.conditions[0]",
        "use either conditionRef or an inline AlertCondition, not both",
    ),
    (
        "inline-condition-problem",
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: x}\nspec:\n  conditions:\n"
        "    - kind: AlertCondition\n      metadata: {name: c}\n      spec:\n        severity: page\n"
        "        condition: {threshold: 2, lookbackWindow: 1 hour}  #!\n",
        "spec.conditions[0].spec.condition.lookbackWindow",
        "invalid duration '1 hour'",
    ),
    (
        "target-missing",
        "apiVersion: openslo/v1\nkind: AlertNotificationTarget\nmetadata: {name: x}\nspec:  #!\n"
        "  description: d\n",
        "spec.target",
        "required field missing",
    ),
    # Environment variables
    (
        "unset-variable",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: x}\nspec:\n  type: Prometheus\n"
        "  connectionDetails:\n    url: http://${PROM_HOST}:9090  #!\n",
        "spec.connectionDetails.url",
        "environment variable PROM_HOST is not set",
    ),
    (
        "malformed-variable",
        "apiVersion: openslo/v1\nkind: DataSource\nmetadata: {name: x}\nspec:\n  type: Prometheus\n"
        "  connectionDetails:\n    url: http://${PROM_HOST:9090  #!\n",
        "spec.connectionDetails.url",
        "malformed variable reference",
    ),
]


@pytest.mark.parametrize(("text", "path", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_problem_points_at_line_and_field(tmp_path: Path, text: str, path: str, phrase: str) -> None:
    catalogue = load_text(tmp_path, text)
    line = next(n for n, content in enumerate(text.splitlines(), 1) if "#!" in content)
    prefix = f"{tmp_path / 'case.yaml'}:{line}: {path}: "
    found = [p for p in lines(catalogue) if p.startswith(prefix) and phrase in p]
    assert found, f"wanted {prefix}...{phrase}... in:\n" + "\n".join(lines(catalogue))
    assert not [p for p in catalogue.problems if p.file.endswith("base.yaml")]
    assert "s" not in {e.slo.name for e in catalogue.entries}


def test_base_catalogue_is_valid(tmp_path: Path) -> None:
    catalogue = load_text(tmp_path, "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: x}\n")
    assert catalogue.problems == ()


def test_an_ok_slo_next_to_a_broken_one_still_builds(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: good}
        spec:
          service: shop
          indicatorRef: requests
          budgetingMethod: Occurrences
          objectives: [{target: 0.9}]
          timeWindow: [{duration: 7d, isRolling: true}]
        ---
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: bad}
        spec:
          service: shop
          indicatorRef: missing
          budgetingMethod: Occurrences
          objectives: [{target: 0.9}]
        """
    )
    catalogue = load_text(tmp_path, text)
    assert [e.slo.name for e in catalogue.entries] == ["good"]
    assert lines(catalogue) == [
        f"{tmp_path / 'case.yaml'}:16: spec.indicatorRef: no SLI named 'missing' (known: requests)"
    ]


def test_a_problem_in_a_shared_document_blocks_every_slo_using_it(tmp_path: Path) -> None:
    text = textwrap.dedent(
        """\
        apiVersion: openslo/v1
        kind: DataSource
        metadata: {name: prom}
        spec: {type: Prometheus, connectionDetails: {url: "${UNSET_URL}"}}
        ---
        apiVersion: openslo/v1
        kind: SLO
        metadata: {name: uses-prom}
        spec:
          service: shop
          indicator:
            metadata: {name: i}
            spec: {thresholdMetric: {metricSource: {metricSourceRef: prom, spec: {query: q}}}}
          budgetingMethod: Occurrences
          objectives: [{target: 0.9, op: lt, value: 1}]
        """
    )
    catalogue = load_text(tmp_path, text)
    assert catalogue.entries == ()
    assert lines(catalogue) == [
        f"{tmp_path / 'case.yaml'}:4: spec.connectionDetails.url: environment variable UNSET_URL is not set"
    ]


def test_dangling_ref_with_nothing_defined_says_so(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: p}\n"
        "spec: {conditions: [{conditionRef: c}]}\n"
    )
    from bot.catalogue import load_paths

    catalogue = load_paths([tmp_path / "a.yaml"], {})
    assert lines(catalogue) == [
        f"{tmp_path / 'a.yaml'}:4: spec.conditions[0].conditionRef: "
        "no AlertCondition named 'c' (none defined)"
    ]


def test_every_problem_of_a_document_is_reported_at_once(tmp_path: Path) -> None:
    text = SLO_HEAD + (
        "spec:\n  service: shop\n  indicatorRef: nope\n  budgetingMethod: Occurences\n"
        "  objectives: [{target: 99.9}]\n  alertPolicies: [{alertPolicyRef: pager}]\n"
    )
    catalogue = load_text(tmp_path, text)
    assert [(p.line, p.path) for p in catalogue.problems] == [
        (6, "spec.indicatorRef"),
        (7, "spec.budgetingMethod"),
        (8, "spec.objectives[0].target"),
        (9, "spec.alertPolicies[0].alertPolicyRef"),
    ]
    assert catalogue.entries == ()
