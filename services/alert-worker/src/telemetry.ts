import { startTracing } from '@agentmeter/telemetry';

// Imported first by main.ts, so instrumentation patches modules before they load.
startTracing('agentmeter-alert-worker', process.env);
