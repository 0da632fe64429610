import 'reflect-metadata';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { QueryModule } from '../app.module';
import { loadConfig } from '../config';

/** Secure by default: every route of the query API declares a permission (@Allow) or is explicitly @Public. */
describe('route permissions', () => {
  const module = QueryModule.forRoot(loadConfig({ AUTH_JWT_SECRET: 'x'.repeat(32) }));
  const routes = (module.controllers ?? []).flatMap((controller) => {
    const prototype = (controller as { prototype: Record<string, unknown> }).prototype;
    return Object.getOwnPropertyNames(prototype)
      .filter(
        (name) =>
          name !== 'constructor' && Reflect.getMetadata(METHOD_METADATA, prototype[name] as object) !== undefined,
      )
      .map((name) => ({
        route: `${controller.name}.${name} ${String(Reflect.getMetadata(PATH_METADATA, prototype[name] as object))}`,
        handler: prototype[name] as object,
        controller,
      }));
  });

  it('finds the routes', () => expect(routes.length).toBeGreaterThan(25));

  it.each(routes.map((r) => [r.route, r]))('%s declares who may call it', (_route, { handler, controller }) => {
    const permission = Reflect.getMetadata('agentmeter:permission', handler) as string | undefined;
    const open = Reflect.getMetadata('agentmeter:public', controller) === true;
    expect(open || typeof permission === 'string').toBe(true);
  });
});
