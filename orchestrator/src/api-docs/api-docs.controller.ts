import { Controller, Get, Header, NotFoundException, Param, Res } from '@nestjs/common';
import { Public } from '@sagaflow/shared';
import type { Response } from 'express';
import { DOCS_ASSETS, DOCS_PAGE } from './docs-page.js';
import { openApiDocument } from './openapi.js';

/** The API's OpenAPI document and its interactive page; public, so that anyone can read how to call the API. */
@Public()
@Controller()
export class ApiDocsController {
  @Get('openapi.json')
  document() {
    return openApiDocument();
  }

  @Get('docs')
  @Header('content-type', 'text/html; charset=utf-8')
  page() {
    return DOCS_PAGE;
  }

  @Get('docs/:asset')
  asset(@Param('asset') name: string, @Res() response: Response) {
    const asset = Object.hasOwn(DOCS_ASSETS, name) ? DOCS_ASSETS[name] : undefined;
    if (!asset) throw new NotFoundException(`no asset ${name}`);
    response.type(asset.type);
    if ('text' in asset) response.send(asset.text);
    else response.sendFile(asset.file, { maxAge: '1h' });
  }
}
