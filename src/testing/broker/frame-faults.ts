/**
 * What RabbitMQ 3.10 answers to a stream its parser refuses, for the codec's `FrameError`s: the reply
 * code and text of the connection.close (`FRAME_ERROR - type 1, all octets = <<>>: {frame_too_large,
 * 139992,131064}`, `UNEXPECTED_FRAME - expected method frame, got non method frame instead`), or a
 * plain hang-up, which is how RabbitMQ meets an unknown method.
 *
 * @module
 * @internal
 */
import type { FrameError } from '../../errors.js';
import { BrokerFault } from './faults.js';

/** @internal The connection.close for a frame error, or `hangup`. */
export type FrameFault = { fault: BrokerFault; classId: number; methodId: number } | 'hangup';

const TYPES: Record<string, number> = { method: 1, header: 2, body: 3, heartbeat: 8 };

/** @internal */
export function frameFault(e: FrameError): FrameFault {
  const m = e.message;
  switch (e.code) {
    case 'UNKNOWN_METHOD':
      return 'hangup';
    case 'FRAME_TOO_LARGE': {
      const parts = /^(\w+) frame of (\d+) bytes exceeds frame_max (\d+)/.exec(m);
      if (parts !== null) {
        const type = TYPES[parts[1]!] ?? 0;
        const payload = Number(parts[2]) - 8;
        const max = Number(parts[3]) - 8;
        return close(501, `type ${type}, all octets = <<>>: {frame_too_large,${payload},${max}}`);
      }
      break;
    }
    case 'UNKNOWN_FRAME_TYPE': {
      const type = /unknown frame type (\d+)/.exec(m)?.[1] ?? '0';
      return close(501, `type ${type}, all octets = <<>>: unknown_frame`);
    }
    case 'BAD_FRAME_END': {
      const parts = /^(\w+) frame ends with 0x([0-9a-f]+)/.exec(m);
      if (parts !== null) {
        const type = TYPES[parts[1]!] ?? 0;
        return close(
          501,
          `type ${type}, all octets = <<>>: {invalid_frame_end_marker,${Number.parseInt(parts[2]!, 16)}}`,
        );
      }
      break;
    }
    case 'UNEXPECTED_FRAME':
      if (m.startsWith('method frame while')) {
        return close(
          505,
          'expected content header for class 60, got non content header frame instead',
          60,
          40,
        );
      }
      if (m.startsWith('content header frame without') || m.startsWith('body frame without')) {
        return close(505, 'expected method frame, got non method frame instead');
      }
      break;
    default:
      break;
  }
  return close(e.replyCode, m);
}

function close(code: number, text: string, classId = 0, methodId = 0): FrameFault {
  return { fault: new BrokerFault(code, text), classId, methodId };
}
