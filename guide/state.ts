/** What every part of the guide shares: the page's state and how it finds its elements. */
import type { Trace, ViTModel } from '../src/index.js';

export const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;
export const canvas = (id: string) => $<HTMLCanvasElement>(`#${id}`);

export interface State {
  model: ViTModel;
  /** Where the model came from (the threads panel loads it again). */
  modelUrl: string;
  trace: Trace | null;
  layer: number;
  head: number;
  token: number;
  /** The digit's true label when it is an untouched held-out sample. */
  truth: string | null;
}
