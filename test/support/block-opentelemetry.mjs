/** `node --import` this file to block every @opentelemetry module (see block-opentelemetry-hooks.mjs). */
import { register } from 'node:module'

register('./block-opentelemetry-hooks.mjs', import.meta.url)
