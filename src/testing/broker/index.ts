/** Work in progress (issue 15). */
export {};
