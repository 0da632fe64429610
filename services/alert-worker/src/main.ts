import './telemetry';
import { bootstrap } from './app.module';

void bootstrap();
