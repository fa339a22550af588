/**
 * `rxamqp/operators`: the RxJS operators users pipe deliveries and publishes through (settling,
 * concurrency, ack batching, decoding, confirm windows). One operator per file, each exported here.
 *
 * The first operators arrive with consumers (see the README's status table); the subpath exists now
 * so that its ESM and CJS builds and type declarations are part of the package from the start.
 *
 * @module
 */
export {};
