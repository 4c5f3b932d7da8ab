import { SetMetadata } from '@nestjs/common';

/** Marks a route that needs no credentials (health checks), for a process that guards the others. */
export const PUBLIC_ROUTE = 'sagaflow:public';
export const Public = () => SetMetadata(PUBLIC_ROUTE, true);
